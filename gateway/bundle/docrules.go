package bundle

import (
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

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

// documentRules are the rules beyond the schema: per kind, and for every
// document the references to other parts and the order of dates in periods.
func documentRules(m *Manifest, kind Kind, root *etree.Element) errs.List {
	var out errs.List
	add := func(code, path, format string, args ...any) {
		out = append(out, errs.E(errs.Invalid, code, format, args...).At(0, path))
	}
	switch kind {
	case KindIndstilling:
		outcome := childText(root, "Indstillingstype")
		want := indstillingDetails[outcome]
		var found []string
		for _, c := range root.ChildElements() {
			if strings.HasSuffix(c.Tag, "Detaljer") {
				found = append(found, c.Tag)
			}
		}
		switch {
		case len(found) > 1 || (len(found) == 1 && found[0] != want.block):
			add("rule.indstilling_details", "/Indstilling/"+found[0], "an indstilling of type %s has no place for %s", outcome, strings.Join(found, ", "))
		case len(found) == 0 && want.required:
			add("rule.indstilling_details", "/Indstilling/"+want.block, "an indstilling of type %s needs a %s block", outcome, want.block)
		}
		if outcome == "ressourceforloeb" || outcome == "jobafklaringsforloeb" {
			if countPath(root, "Indsatser", "Indsats") == 0 {
				add("rule.indsats_missing", "/Indstilling/Indsatser", "an indstilling of type %s names at least one indsats", outcome)
			}
		}
		if m.MeetingDate != nil {
			if d, err := time.Parse(DateLayout, childText(root, "Moede", "Dato")); err != nil || !d.Equal(*m.MeetingDate) {
				add("rule.meeting_mismatch", "/Indstilling/Moede/Dato", "the indstilling's meeting date differs from the manifest's MeetingDate")
			}
		}
	case KindHenvisning:
		if childText(root, "Samtykke", "Givet") == "false" || childText(root, "Samtykke", "Givet") == "0" {
			add("rule.consent_missing", "/Henvisning/Samtykke/Givet", "a referral to klinisk funktion needs the citizen's consent (retssikkerhedsloven § 11 a)")
		}
	}
	// Every reference to a part (an element named Del) must name a part of
	// this bundle, and every period runs forwards.
	walk(root, "/"+root.Tag, func(el *etree.Element, path string) {
		switch el.Tag {
		case "Del":
			if id := strings.TrimSpace(el.Text()); id != "" {
				if _, ok := m.Part(id); !ok {
					add("rule.part_reference", path, "the document refers to part %q, which is not in the bundle", clip(id))
				}
			}
		case "Periode":
			from, ferr := time.Parse(DateLayout, childText(el, "Fra"))
			to, terr := time.Parse(DateLayout, childText(el, "Til"))
			if ferr == nil && terr == nil && to.Before(from) {
				add("rule.period_order", path, "the period ends before it starts")
			}
		}
	})
	return out
}

// walk visits el and every descendant with an XPath-like location.
func walk(el *etree.Element, path string, f func(*etree.Element, string)) {
	f(el, path)
	seen := map[string]int{}
	for _, c := range el.ChildElements() {
		seen[c.Tag]++
		walk(c, fmt.Sprintf("%s/%s[%d]", path, c.Tag, seen[c.Tag]), f)
	}
}

// countPath counts the elements at a path of local names below el.
func countPath(el *etree.Element, path ...string) int {
	if len(path) == 0 {
		return 1
	}
	n := 0
	for _, c := range el.ChildElements() {
		if c.Tag == path[0] {
			n += countPath(c, path[1:]...)
		}
	}
	return n
}
