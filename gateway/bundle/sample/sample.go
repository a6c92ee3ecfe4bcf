// Package sample generates realistic, fictional case content for the parts
// of a case bundle: the XML documents of schemas/*-v1.xsd (forberedende del,
// resumé, indstilling, henvisning, sundhedskoordinatorens udtalelse,
// speciallægeattest) and PDF attachments (a GP's LÆ 265, a large scanning).
//
// The case is one fictional citizen's path through the 2013 reform: a
// 44-year-old former social- og sundhedsassistent with chronic low back pain
// and a moderate depression, in jobafklaringsforløb, whom the
// rehabilitation team recommends for a 24-month ressourceforløb with
// indsatser in all three tracks and a mentor. The documents of one case agree
// with each other (dates, diagnoses, questions and answers).
//
// Output is deterministic: the same Params give the same bytes, so examples
// and tests can pin digests. With Params.Large every XML document holds
// 5,000+ elements and an extra attachment of at least 20 MiB is streamed from
// a seeded ChaCha8 generator, never held in memory.
//
// Nothing here is about a real person: the names are common Danish names,
// the CPR number has no valid modulus-11 check digit (valid since 2007 but
// unlikely to be issued for a 1981 birth date), and mail addresses use the
// reserved .example top-level domain.
package sample

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Copenhagen, so DefaultParams is the same on every machine
	"unicode/utf8"
)

// GP is the citizen's general practitioner (egen læge): the clinic's name,
// its SOR identifier and its GLN (EAN lokationsnummer).
type GP struct{ Name, SOR, GLN string }

// Params describe the case and the bundle purpose to generate parts for.
type Params struct {
	Purpose      string // forberedelse | indstilling | henvisning | sundhedskoordinator-udtalelse | klinisk-funktion-attest
	CaseID       string
	CPR, Name    string // the fictional citizen
	Municipality string // e.g. "Københavns Kommune"
	Region       string // e.g. "Region Hovedstaden"
	GP           GP
	MeetingDate  time.Time // date of the rehabilitation-team meeting (date part used)
	Created      time.Time // document creation time (with zone Europe/Copenhagen)
	Large        bool      // documents of 5,000+ elements and one attachment of >= 20 MiB
}

// Part is one generated part of a bundle.
type Part struct {
	ID        string // file name and part ID, e.g. "forberedende-del.xml"
	Kind      string // forberedende-del|resume|indstilling|henvisning|sundhedskoordinator-udtalelse|speciallaegeattest|laegeattest|bilag
	MediaType string // application/xml|application/pdf|text/plain|image/jpeg|image/png
	Size      int64
	// Write writes the exact bytes (deterministic for the same Params).
	// Large attachments are streamed, never held in memory.
	Write func(w io.Writer) error
}

// The purposes, as in the manifest schema.
const (
	PurposeForberedelse = "forberedelse"
	PurposeIndstilling  = "indstilling"
	PurposeHenvisning   = "henvisning"
	PurposeSKUdtalelse  = "sundhedskoordinator-udtalelse"
	PurposeKFAttest     = "klinisk-funktion-attest"
)

// Purposes lists the purposes Parts accepts, in the order of the process.
func Purposes() []string {
	return []string{PurposeForberedelse, PurposeSKUdtalelse, PurposeIndstilling, PurposeHenvisning, PurposeKFAttest}
}

// Part IDs of the generated parts.
const (
	IDForberedendeDel = "forberedende-del.xml"
	IDResume          = "resume.xml"
	IDIndstilling     = "indstilling.xml"
	IDHenvisning      = "henvisning.xml"
	IDSKUdtalelse     = "sundhedskoordinator-udtalelse.xml"
	IDSpeciallaege    = "speciallaegeattest.xml"
	IDLaegeattest     = "laegeattest-le265.pdf"
	IDScanning        = "bilag-scanning.pdf"
)

// LargeAttachmentMin is the least size of the large attachment (20 MiB).
const LargeAttachmentMin = 20 << 20

// copenhagen is where the Danish process's dates are read.
var copenhagen = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil { // unreachable: time/tzdata is embedded
		panic(err)
	}
	return loc
}()

// DefaultParams returns a complete fictional case for purpose: Mette
// Kristensen, born 14 August 1981, of Københavns Kommune in Region
// Hovedstaden, whose rehabilitation-team meeting is on Tuesday 10 March 2026.
// Created is a plausible time for the purpose's step of the process (two
// weeks before the meeting for the forberedelse, after it for the rest). An
// unknown purpose is kept as given, and Parts then reports it.
func DefaultParams(purpose string) Params {
	meeting := time.Date(2026, time.March, 10, 0, 0, 0, 0, copenhagen)
	at := func(days, hour, minute int) time.Time {
		d := meeting.AddDate(0, 0, days)
		return time.Date(d.Year(), d.Month(), d.Day(), hour, minute, 0, 0, copenhagen)
	}
	var created time.Time
	switch purpose {
	case PurposeForberedelse:
		created = at(-14, 9, 30)
	case PurposeSKUdtalelse:
		created = at(-4, 13, 15)
	case PurposeIndstilling:
		created = at(1, 11, 0)
	case PurposeHenvisning:
		created = at(3, 10, 5)
	case PurposeKFAttest:
		created = at(45, 14, 40)
	default:
		created = at(0, 12, 0)
	}
	return Params{
		Purpose:      purpose,
		CaseID:       "KK-2026-004417",
		CPR:          "1408812346", // 14-08-1981, female; fails modulus 11 on purpose
		Name:         "Mette Kristensen",
		Municipality: "Københavns Kommune",
		Region:       "Region Hovedstaden",
		GP: GP{
			Name: "Lægehuset Kastanjen",
			SOR:  "488151000016008",
			GLN:  "5790001774219", // GS1 mod-10 check digit 9
		},
		MeetingDate: meeting,
		Created:     created,
	}
}

var (
	caseIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$`)
	cprPattern    = regexp.MustCompile(`^[0-9]{10}$`)
	sorPattern    = regexp.MustCompile(`^[0-9]{6,18}$`)
	glnPattern    = regexp.MustCompile(`^[0-9]{13}$`)
	namePattern   = regexp.MustCompile(`^\S(.*\S)?$`)
)

// check reports the first parameter that would make a document
// schema-invalid. Messages name the field, never its value.
func (p Params) check() error {
	switch p.Purpose {
	case PurposeForberedelse, PurposeIndstilling, PurposeHenvisning, PurposeSKUdtalelse, PurposeKFAttest:
	default:
		return fmt.Errorf("sample: unknown purpose %q (one of %s)", p.Purpose, strings.Join(Purposes(), ", "))
	}
	if !caseIDPattern.MatchString(p.CaseID) {
		return errors.New("sample: CaseID does not match the schema's CaseID pattern")
	}
	if !cprPattern.MatchString(p.CPR) {
		return errors.New("sample: CPR must be ten digits")
	}
	for _, f := range []struct{ field, v string }{
		{"Name", p.Name}, {"Municipality", p.Municipality}, {"Region", p.Region}, {"GP.Name", p.GP.Name},
	} {
		if !namePattern.MatchString(f.v) || utf8.RuneCountInString(f.v) > 150 || strings.ContainsAny(f.v, "\r\n\t") {
			return fmt.Errorf("sample: %s must be 1 to 150 characters on one line, without leading or trailing space", f.field)
		}
	}
	if !sorPattern.MatchString(p.GP.SOR) {
		return errors.New("sample: GP.SOR must be 6 to 18 digits")
	}
	if !glnPattern.MatchString(p.GP.GLN) {
		return errors.New("sample: GP.GLN must be 13 digits")
	}
	if p.MeetingDate.IsZero() {
		return errors.New("sample: MeetingDate is required")
	}
	if p.Created.IsZero() {
		return errors.New("sample: Created is required")
	}
	if y := p.MeetingDate.Year(); y < 2013 || y > 9000 {
		return errors.New("sample: MeetingDate must be in or after 2013")
	}
	return nil
}

// Parts generates the parts of a bundle for p.Purpose:
//
//	forberedelse                  forberedende-del.xml, resume.xml, laegeattest-le265.pdf
//	indstilling                   indstilling.xml
//	henvisning                    henvisning.xml, laegeattest-le265.pdf
//	sundhedskoordinator-udtalelse sundhedskoordinator-udtalelse.xml
//	klinisk-funktion-attest       speciallaegeattest.xml
//
// With p.Large every purpose also gets bilag-scanning.pdf (kind bilag) of at
// least 20 MiB, and every XML document 5,000+ elements.
func Parts(p Params) ([]Part, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	c := newCaseData(p)
	type doc struct {
		id, kind string
		build    func() *document
	}
	var docs []doc
	pdf := false
	switch p.Purpose {
	case PurposeForberedelse:
		docs = []doc{{IDForberedendeDel, "forberedende-del", c.forberedendeDel}, {IDResume, "resume", c.resume}}
		pdf = true
	case PurposeIndstilling:
		docs = []doc{{IDIndstilling, "indstilling", c.indstilling}}
	case PurposeHenvisning:
		docs = []doc{{IDHenvisning, "henvisning", c.henvisning}}
		pdf = true
	case PurposeSKUdtalelse:
		docs = []doc{{IDSKUdtalelse, "sundhedskoordinator-udtalelse", c.skUdtalelse}}
	case PurposeKFAttest:
		docs = []doc{{IDSpeciallaege, "speciallaegeattest", c.speciallaegeattest}}
	}
	var parts []Part
	for _, d := range docs {
		b, err := d.build().bytes()
		if err != nil {
			return nil, fmt.Errorf("sample: %s: %w", d.id, err)
		}
		parts = append(parts, bytesPart(d.id, d.kind, "application/xml", b))
	}
	if pdf {
		parts = append(parts, bytesPart(IDLaegeattest, "laegeattest", "application/pdf", c.le265PDF()))
	}
	if p.Large {
		parts = append(parts, c.scanningPart())
	}
	return parts, nil
}

func bytesPart(id, kind, mediaType string, b []byte) Part {
	return Part{
		ID: id, Kind: kind, MediaType: mediaType, Size: int64(len(b)),
		Write: func(w io.Writer) error {
			_, err := w.Write(b)
			return err
		},
	}
}
