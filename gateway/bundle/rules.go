package bundle

import (
	"fmt"
	"slices"
	"strings"
	"time"
	// The Danish process reads dates in Europe/Copenhagen. Importing the
	// embedded time zone database here (not only in the mains) makes it a
	// dependency of this package, so it is registered before copenhagen is
	// initialised, on any host.
	_ "time/tzdata"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/ident"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

// Limits bound a bundle before and while it is read.
type Limits struct {
	MaxPartBytes   int64 // one attachment
	MaxBundleBytes int64 // all parts together
	MaxDocBytes    int64 // one structured (XML) part; also bounded by the document XML limits
	MaxClockSkew   time.Duration
}

// DefaultLimits are generous for real cases (a scanned journal of several
// hundred MB) while keeping every structured document small enough to be
// validated in memory.
var DefaultLimits = Limits{
	MaxPartBytes:   512 << 20,
	MaxBundleBytes: 1 << 30,
	MaxDocBytes:    16 << 20,
	MaxClockSkew:   5 * time.Minute,
}

func (l Limits) withDefaults() Limits {
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = DefaultLimits.MaxPartBytes
	}
	if l.MaxBundleBytes <= 0 {
		l.MaxBundleBytes = DefaultLimits.MaxBundleBytes
	}
	if l.MaxDocBytes <= 0 {
		l.MaxDocBytes = DefaultLimits.MaxDocBytes
	}
	if l.MaxClockSkew <= 0 {
		l.MaxClockSkew = DefaultLimits.MaxClockSkew
	}
	return l
}

// reformStart is the day the rehabilitation teams began (lov nr. 1380 af
// 23/12/2012): no bundle can be about a meeting before it.
var reformStart = time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC)

// copenhagen is the time zone in which dates of the Danish process are read.
var copenhagen = mustZone("Europe/Copenhagen")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		// time/tzdata is embedded in the binaries (see cmd/), so this
		// only happens in a broken build.
		panic(fmt.Sprintf("time zone %s: %v", name, err))
	}
	return loc
}

// CheckManifest applies the business rules of the manifest: identifiers
// (CPR format only, never its checksum; CVR modulus 11; GLN check digit), the
// sender against the registry, the purpose's required fields and parts, sizes
// and dates. It returns every rule broken, as an errs.List.
func CheckManifest(m *Manifest, reg *registry.Registry, lim Limits, now time.Time) error {
	lim = lim.withDefaults()
	var out errs.List
	add := func(kind errs.Kind, code, path, format string, args ...any) {
		out = append(out, errs.E(kind, code, format, args...).At(0, path).InPart(ManifestFile))
	}

	spec, ok := SpecOf(m.Purpose)
	if !ok {
		add(errs.Invalid, "rule.purpose", "/Manifest/Purpose", "unknown purpose")
		return out.Err()
	}

	// Sender.
	if !ident.ValidCVR(m.Sender.CVR) {
		add(errs.Invalid, "rule.cvr_checksum", "/Manifest/Sender/CVR", "CVR number fails the modulus-11 check")
	}
	org, known := reg.ByID(m.Sender.Organisation)
	switch {
	case !known:
		add(errs.Invalid, "rule.unknown_sender", "/Manifest/Sender/Organisation", "organisation %q is not in the registry", clip(m.Sender.Organisation))
	case string(org.Kind) != string(spec.Sender):
		add(errs.Invalid, "rule.sender_kind", "/Manifest/Sender/Organisation", "purpose %s is sent by a %s, not by %s", m.Purpose, spec.Sender, org.ID)
	case org.CVR != m.Sender.CVR:
		add(errs.Invalid, "rule.sender_cvr", "/Manifest/Sender/CVR", "CVR number does not belong to %s", org.ID)
	}

	// Citizen: format only. Never the modulus-11 check: CPR numbers without a
	// valid check digit have been issued since 2007.
	if !ident.ValidCPRFormat(m.Citizen.CPR) {
		add(errs.Invalid, "rule.cpr_format", "/Manifest/Citizen/CPR", "the citizen's CPR number is not ten digits starting with a valid date")
	}

	// GP.
	if m.GP == nil {
		if spec.NeedsGP {
			add(errs.Invalid, "rule.gp_missing", "/Manifest/GeneralPractitioner", "purpose %s needs the citizen's GP (a copy is sent there)", m.Purpose)
		}
	} else if !ident.ValidGLN(m.GP.GLN) {
		add(errs.Invalid, "rule.gln_checksum", "/Manifest/GeneralPractitioner/GLN", "GLN fails the GS1 check digit")
	}

	// Replies.
	if spec.NeedsInReplyTo && m.InReplyTo == "" {
		add(errs.Invalid, "rule.in_reply_to_missing", "/Manifest/InReplyTo", "purpose %s is a reply and needs InReplyTo", m.Purpose)
	}
	if m.InReplyTo != "" && m.InReplyTo == m.BundleID {
		add(errs.Invalid, "rule.in_reply_to_self", "/Manifest/InReplyTo", "a bundle cannot reply to itself")
	}

	// Dates.
	if m.Created.After(now.Add(lim.MaxClockSkew)) {
		add(errs.Invalid, "rule.created_in_future", "/Manifest/Created", "creation time is in the future (more than %s ahead of the gateway's clock)", lim.MaxClockSkew)
	}
	if m.Created.Before(reformStart) {
		add(errs.Invalid, "rule.date_range", "/Manifest/Created", "creation time is before 2013")
	}
	if m.MeetingDate == nil {
		if spec.NeedsMeeting {
			add(errs.Invalid, "rule.meeting_missing", "/Manifest/MeetingDate", "purpose %s needs the rehabilitation-team meeting date", m.Purpose)
		}
	} else {
		md := *m.MeetingDate
		cy, cm, cd := m.Created.In(copenhagen).Date()
		created := time.Date(cy, cm, cd, 0, 0, 0, 0, time.UTC)
		switch {
		case md.Before(reformStart) || md.After(created.AddDate(2, 0, 0)) || md.Before(created.AddDate(-2, 0, 0)):
			add(errs.Invalid, "rule.date_range", "/Manifest/MeetingDate", "meeting date is more than two years from the creation date")
		case m.Purpose == Forberedelse && md.Before(created):
			add(errs.Invalid, "rule.meeting_passed", "/Manifest/MeetingDate", "preparation material for a meeting that has already taken place")
		case m.Purpose == Indstilling && md.After(created):
			add(errs.Invalid, "rule.meeting_not_held", "/Manifest/MeetingDate", "an indstilling dated before its meeting")
		}
	}

	// Parts.
	seen := map[string]bool{}
	count := map[Kind]int{}
	var total int64
	for i, p := range m.Parts {
		path := fmt.Sprintf("/Manifest/Parts/Part[%d]", i+1)
		if seen[p.ID] {
			add(errs.Invalid, "rule.duplicate_part", path+"/@id", "part ID %q occurs more than once", clip(p.ID))
		}
		seen[p.ID] = true
		if strings.EqualFold(p.ID, ManifestFile) || strings.EqualFold(p.ID, AcceptanceFile) {
			add(errs.Invalid, "rule.reserved_part_id", path+"/@id", "part ID %q is reserved", clip(p.ID))
		}
		count[p.Kind]++
		if !spec.Allows(p.Kind) {
			add(errs.Invalid, "rule.part_kind", path+"/@kind", "purpose %s does not take parts of kind %s", m.Purpose, p.Kind)
		}
		if p.Kind.Structured() {
			if p.MediaType != "application/xml" {
				add(errs.Invalid, "rule.media_type", path+"/@mediaType", "a %s part is application/xml", p.Kind)
			}
			if p.Size > lim.MaxDocBytes {
				add(errs.TooLarge, "rule.part_too_large", path+"/@size", "a structured document may be at most %d bytes", lim.MaxDocBytes)
			}
		} else if !slices.Contains(AttachmentMediaTypes, p.MediaType) {
			add(errs.Invalid, "rule.media_type", path+"/@mediaType", "attachments are one of %s", strings.Join(AttachmentMediaTypes, ", "))
		}
		if p.Size > lim.MaxPartBytes {
			add(errs.TooLarge, "rule.part_too_large", path+"/@size", "part is larger than %d bytes", lim.MaxPartBytes)
		}
		total += p.Size
	}
	if total > lim.MaxBundleBytes {
		add(errs.TooLarge, "rule.bundle_too_large", "/Manifest/Parts", "parts total %d bytes, the limit is %d", total, lim.MaxBundleBytes)
	}
	for _, k := range spec.Required {
		switch n := count[k]; {
		case n == 0:
			add(errs.Invalid, "rule.part_missing", "/Manifest/Parts", "purpose %s needs a %s part", m.Purpose, k)
		case n > 1:
			add(errs.Invalid, "rule.part_repeated", "/Manifest/Parts", "purpose %s takes exactly one %s part, found %d", m.Purpose, k, n)
		}
	}
	return out.Err()
}

// clip keeps identifiers from untrusted input short in messages. Values
// reaching it have passed the XSD patterns (no CPR-like content fits a part
// ID or organisation ID pattern with ten digits and nothing else), and Redact
// removes any long digit run anyway.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return errs.Redact(s)
}
