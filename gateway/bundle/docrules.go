package bundle

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// indstillingDetails maps each outcome of an indstilling to the block that
// describes it, and whether the block is required. XSD 1.0 cannot tie an
// enumeration value to the choice of an element, so the gateway checks it.
var indstillingDetails = map[string]struct {
	block    string
	required bool
}{
	"ressourceforloeb":      {"RessourceforloebDetaljer", true},
	"jobafklaringsforloeb":  {"JobafklaringsforloebDetaljer", false},
	"fleksjob":              {"FleksjobDetaljer", true},
	"tilskud-selvstaendige": {"TilskudSelvstaendigeDetaljer", false},
	"foertidspension":       {"FoertidspensionDetaljer", true},
	"anden-indsats":         {"AndenIndsatsDetaljer", true},
	"tilbagesendelse":       {"TilbagesendelseDetaljer", true},
}

// textOf lists the elements whose text the rules read.
var textOf = map[string]bool{
	"Sagsnummer": true, "CPR": true, "Indstillingstype": true, "Dato": true,
	"Givet": true, "Del": true, "Fra": true, "Til": true,
}

// docRules applies the rules that tie a schema-valid document to its
// manifest, and the rules XSD 1.0 cannot express, while xmlsafe streams the
// document once (it is an xmlsafe.Visitor). Every document carries the case
// at /<Root>/Sag/Sagsnummer and the citizen at /<Root>/Borger/CPR; a
// mismatch means material about another person or case, the worst mistake
// this gateway could pass on.
type docRules struct {
	m     *Manifest
	kind  Kind
	ns    string
	stack []frame
	out   errs.List

	caseID, cpr, outcome, meeting, consent string
	blocks                                 []string
	indsatser                              int
}

type frame struct {
	name     string
	index    int            // position among same-named siblings, from 1
	children map[string]int // same-named sibling counters
	text     []byte
	from, to string // for Periode
}

func newDocRules(m *Manifest, kind Kind) *docRules {
	return &docRules{m: m, kind: kind, ns: kind.Namespace()}
}

// path is the location of the current element, /Root/A[1]/B[2].
func (d *docRules) path() string {
	var b strings.Builder
	for i, f := range d.stack {
		b.WriteByte('/')
		b.WriteString(f.name)
		if i > 0 {
			fmt.Fprintf(&b, "[%d]", f.index)
		}
	}
	return b.String()
}

func (d *docRules) add(code, path, format string, args ...any) {
	d.out = append(d.out, errs.E(errs.Invalid, code, format, args...).At(0, path))
}

func (d *docRules) Start(name xml.Name, _ int) {
	f := frame{name: name.Local, index: 1}
	if name.Space != d.ns {
		f.name = "{" + clip(name.Space) + "}" + name.Local
	}
	if n := len(d.stack); n > 0 {
		p := &d.stack[n-1]
		if p.children == nil {
			p.children = map[string]int{}
		}
		p.children[f.name]++
		f.index = p.children[f.name]
	}
	d.stack = append(d.stack, f)
}

func (d *docRules) Text(t []byte) {
	f := &d.stack[len(d.stack)-1]
	if textOf[f.name] {
		f.text = append(f.text, t...)
	}
}

func (d *docRules) End(xml.Name) {
	n := len(d.stack)
	f := d.stack[n-1]
	parent := ""
	if n >= 2 {
		parent = d.stack[n-2].name
	}
	text := strings.TrimSpace(string(f.text))
	switch {
	case n == 3 && parent == "Sag" && f.name == "Sagsnummer":
		d.caseID = text
	case n == 3 && parent == "Borger" && f.name == "CPR":
		d.cpr = text
	case n == 2 && f.name == "Indstillingstype":
		d.outcome = text
	case n == 2 && strings.HasSuffix(f.name, "Detaljer"):
		d.blocks = append(d.blocks, f.name)
	case n == 3 && parent == "Indsatser" && f.name == "Indsats":
		d.indsatser++
	case n == 3 && parent == "Moede" && f.name == "Dato":
		d.meeting = text
	case n == 3 && parent == "Samtykke" && f.name == "Givet":
		d.consent = text
	case f.name == "Del":
		if text != "" {
			if _, ok := d.m.Part(text); !ok {
				d.add("rule.part_reference", d.path(), "the document refers to part %q, which is not in the bundle", clip(text))
			}
		}
	case parent == "Periode" && f.name == "Fra":
		d.stack[n-2].from = text
	case parent == "Periode" && f.name == "Til":
		d.stack[n-2].to = text
	case f.name == "Periode":
		from, ferr := time.Parse(DateLayout, f.from)
		to, terr := time.Parse(DateLayout, f.to)
		if ferr == nil && terr == nil && to.Before(from) {
			d.add("rule.period_order", d.path(), "the period ends before it starts")
		}
	}
	d.stack = d.stack[:n-1]
}

// result returns every rule broken, the document-wide ones first.
func (d *docRules) result(root string) error {
	var out errs.List
	add := func(code, path, format string, args ...any) {
		out = append(out, errs.E(errs.Invalid, code, format, args...).At(0, path))
	}
	rootPath := "/" + root
	if d.caseID != d.m.CaseID {
		add("rule.case_mismatch", rootPath+"/Sag/Sagsnummer", "the document's case number differs from the manifest's CaseID")
	}
	if d.cpr != d.m.Citizen.CPR {
		add("rule.citizen_mismatch", rootPath+"/Borger/CPR", "the document's citizen differs from the manifest's citizen")
	}
	switch d.kind {
	case KindIndstilling:
		want := indstillingDetails[d.outcome]
		switch {
		case len(d.blocks) > 1 || (len(d.blocks) == 1 && d.blocks[0] != want.block):
			add("rule.indstilling_details", rootPath+"/"+d.blocks[0], "an indstilling of type %s has no place for %s", d.outcome, strings.Join(d.blocks, ", "))
		case len(d.blocks) == 0 && want.required:
			add("rule.indstilling_details", rootPath+"/"+want.block, "an indstilling of type %s needs a %s block", d.outcome, want.block)
		}
		if (d.outcome == "ressourceforloeb" || d.outcome == "jobafklaringsforloeb") && d.indsatser == 0 {
			add("rule.indsats_missing", rootPath+"/Indsatser", "an indstilling of type %s names at least one indsats", d.outcome)
		}
		if d.m.MeetingDate != nil {
			if md, err := time.Parse(DateLayout, d.meeting); err != nil || !md.Equal(*d.m.MeetingDate) {
				add("rule.meeting_mismatch", rootPath+"/Moede/Dato", "the indstilling's meeting date differs from the manifest's MeetingDate")
			}
		}
	case KindHenvisning:
		if d.consent == "false" || d.consent == "0" {
			add("rule.consent_missing", rootPath+"/Samtykke/Givet", "a referral to klinisk funktion needs the citizen's consent (retssikkerhedsloven § 11 a)")
		}
	}
	out = append(out, d.out...)
	return out.Err()
}
