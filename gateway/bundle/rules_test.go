package bundle_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/ident"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

// manifestOf returns the parsed manifest of the fixed example of a purpose.
func manifestOf(t *testing.T, v *bundle.Validator, p bundle.Purpose) *bundle.Manifest {
	t.Helper()
	dir, _ := writeExample(t, p, false)
	m, err := v.Manifest(readFile(t, dir+"/manifest.xml"))
	if err != nil {
		t.Fatalf("example %s: %v", p, err)
	}
	return m
}

func codes(err error) []string {
	var out []string
	for _, e := range errs.Flatten(err) {
		out = append(out, e.Code)
	}
	return out
}

func date(s string) *time.Time {
	d, err := time.Parse(bundle.DateLayout, s)
	if err != nil {
		panic(err)
	}
	return &d
}

func TestCheckManifestRules(t *testing.T) {
	v := newValidator(t)
	reg := registry.Default()
	base := map[bundle.Purpose]*bundle.Manifest{}
	for _, p := range bundle.Purposes() {
		base[p] = manifestOf(t, v, p)
	}
	aarhus, _ := reg.ByID("kommune-751")
	region, _ := reg.ByID("region-1084")

	cases := []struct {
		name    string
		purpose bundle.Purpose
		mutate  func(m *bundle.Manifest)
		want    string // "" = valid
	}{
		{name: "ok/forberedelse", purpose: bundle.Forberedelse},
		{name: "ok/indstilling", purpose: bundle.Indstilling},
		{name: "ok/henvisning", purpose: bundle.Henvisning},
		{name: "ok/sundhedskoordinator-udtalelse", purpose: bundle.SKUdtalelse},
		{name: "ok/klinisk-funktion-attest", purpose: bundle.KlinikAttest},
		{name: "ok/cpr-failing-modulus-11", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.Citizen.CPR = "0101074001" }},
		{name: "ok/replacement-cpr-day-plus-60", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.Citizen.CPR = "6101901234" }},
		{name: "ok/other-municipality", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			m.Sender.Organisation, m.Sender.CVR = aarhus.ID, aarhus.CVR
		}},
		{name: "fail/cpr-day-32", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.Citizen.CPR = "3201901234" }, want: "rule.cpr_format"},
		{name: "fail/cpr-30-february", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.Citizen.CPR = "3002901234" }, want: "rule.cpr_format"},
		{name: "fail/cvr-checksum", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.Sender.CVR = "64942213" }, want: "rule.cvr_checksum"},
		{name: "fail/unknown-sender", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.Sender.Organisation = "kommune-999" }, want: "rule.unknown_sender"},
		{name: "fail/sender-cvr-of-another-municipality", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.Sender.CVR = aarhus.CVR }, want: "rule.sender_cvr"},
		{name: "fail/region-sends-forberedelse", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			m.Sender.Organisation, m.Sender.CVR = region.ID, region.CVR
		}, want: "rule.sender_kind"},
		{name: "fail/kommune-sends-attest", purpose: bundle.KlinikAttest, mutate: func(m *bundle.Manifest) {
			m.Sender.Organisation, m.Sender.CVR = aarhus.ID, aarhus.CVR
		}, want: "rule.sender_kind"},
		{name: "fail/gln-check-digit", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) { m.GP.GLN = flipLast(m.GP.GLN) }, want: "rule.gln_checksum"},
		{name: "fail/indstilling-without-gp", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) { m.GP = nil }, want: "rule.gp_missing"},
		{name: "ok/forberedelse-without-gp", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.GP = nil }},
		{name: "fail/forberedelse-without-meeting", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) { m.MeetingDate = nil }, want: "rule.meeting_missing"},
		{name: "fail/forberedelse-for-past-meeting", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			d := m.Created.AddDate(0, 0, -3)
			m.MeetingDate = date(d.Format(bundle.DateLayout))
		}, want: "rule.meeting_passed"},
		{name: "fail/indstilling-before-meeting", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) {
			m.MeetingDate = date(m.Created.AddDate(0, 0, 7).Format(bundle.DateLayout))
		}, want: "rule.meeting_not_held"},
		{name: "fail/meeting-three-years-ahead", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			m.MeetingDate = date(m.Created.AddDate(3, 0, 0).Format(bundle.DateLayout))
		}, want: "rule.date_range"},
		{name: "fail/created-in-future", purpose: bundle.Henvisning, mutate: func(m *bundle.Manifest) { m.Created = fixedNow.Add(time.Hour) }, want: "rule.created_in_future"},
		{name: "ok/created-within-clock-skew", purpose: bundle.Henvisning, mutate: func(m *bundle.Manifest) { m.Created = fixedNow.Add(2 * time.Minute) }},
		{name: "fail/created-before-reform", purpose: bundle.Henvisning, mutate: func(m *bundle.Manifest) { m.Created = time.Date(2012, 6, 1, 0, 0, 0, 0, time.UTC) }, want: "rule.date_range"},
		{name: "fail/reply-without-in-reply-to", purpose: bundle.SKUdtalelse, mutate: func(m *bundle.Manifest) { m.InReplyTo = "" }, want: "rule.in_reply_to_missing"},
		{name: "fail/reply-to-itself", purpose: bundle.SKUdtalelse, mutate: func(m *bundle.Manifest) { m.InReplyTo = m.BundleID }, want: "rule.in_reply_to_self"},
		{name: "fail/forberedelse-without-resume", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			m.Parts = slices.DeleteFunc(slices.Clone(m.Parts), func(p bundle.Part) bool { return p.Kind == bundle.KindResume })
		}, want: "rule.part_missing"},
		{name: "fail/two-indstillinger", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) {
			p := m.Parts[0]
			p.ID = "indstilling-2.xml"
			m.Parts = append(slices.Clone(m.Parts), p)
		}, want: "rule.part_repeated"},
		{name: "fail/kind-not-for-purpose", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) {
			m.Parts = append(slices.Clone(m.Parts), bundle.Part{ID: "le265.pdf", Kind: bundle.KindLaegeattest, MediaType: "application/pdf", Size: 10, SHA256: strings.Repeat("0", 64)})
		}, want: "rule.part_kind"},
		{name: "fail/structured-part-as-pdf", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) {
			m.Parts = slices.Clone(m.Parts)
			m.Parts[0].MediaType = "application/pdf"
		}, want: "rule.media_type"},
		{name: "fail/attachment-as-xml", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) {
			m.Parts = append(slices.Clone(m.Parts), bundle.Part{ID: "bilag.xml", Kind: bundle.KindBilag, MediaType: "application/xml", Size: 10, SHA256: strings.Repeat("0", 64)})
		}, want: "rule.media_type"},
		{name: "fail/duplicate-part-id", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			m.Parts = slices.Clone(m.Parts)
			m.Parts[1].ID = m.Parts[0].ID
		}, want: "rule.duplicate_part"},
		{name: "fail/reserved-part-id", purpose: bundle.Indstilling, mutate: func(m *bundle.Manifest) {
			m.Parts = append(slices.Clone(m.Parts), bundle.Part{ID: "Manifest.xml", Kind: bundle.KindBilag, MediaType: "text/plain", Size: 1, SHA256: strings.Repeat("0", 64)})
		}, want: "rule.reserved_part_id"},
		{name: "fail/attachment-too-large", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			m.Parts = append(slices.Clone(m.Parts), bundle.Part{ID: "scan.pdf", Kind: bundle.KindBilag, MediaType: "application/pdf", Size: bundle.DefaultLimits.MaxPartBytes + 1, SHA256: strings.Repeat("0", 64)})
		}, want: "rule.part_too_large"},
		{name: "fail/bundle-too-large", purpose: bundle.Forberedelse, mutate: func(m *bundle.Manifest) {
			m.Parts = slices.Clone(m.Parts)
			for i := range 3 {
				m.Parts = append(m.Parts, bundle.Part{ID: "scan" + string(rune('a'+i)) + ".pdf", Kind: bundle.KindBilag, MediaType: "application/pdf", Size: bundle.DefaultLimits.MaxPartBytes, SHA256: strings.Repeat("0", 64)})
			}
		}, want: "rule.bundle_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := *base[tc.purpose]
			if m.GP != nil {
				gp := *m.GP
				m.GP = &gp
			}
			if tc.mutate != nil {
				tc.mutate(&m)
			}
			err := bundle.CheckManifest(&m, reg, bundle.Limits{}, fixedNow)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if !slices.Contains(codes(err), tc.want) {
				t.Fatalf("want %s, got %v", tc.want, err)
			}
			assertNoCPR(t, err, m.Citizen.CPR)
			for _, e := range errs.Flatten(err) {
				if e.Part != bundle.ManifestFile || e.Path == "" || e.Kind == errs.Other {
					t.Errorf("error not located or typed: %+v", e)
				}
			}
		})
	}
}

func flipLast(s string) string {
	b := []byte(s)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}

// assertNoCPR fails when a CPR number appears in an error.
func assertNoCPR(t *testing.T, err error, cpr string) {
	t.Helper()
	if err != nil && cpr != "" && strings.Contains(err.Error(), cpr) {
		t.Fatalf("CPR number in error message: %v", err)
	}
}

func TestExampleCPRNeedsNoModulus11(t *testing.T) {
	// The fictional citizen's CPR fails the old modulus-11 check, like
	// numbers issued since 2007: the gateway must accept it.
	v := newValidator(t)
	m := manifestOf(t, v, bundle.Forberedelse)
	if !ident.ValidCPRFormat(m.Citizen.CPR) {
		t.Fatal("example CPR has an invalid format")
	}
	w := []int{4, 3, 2, 7, 6, 5, 4, 3, 2, 1}
	sum := 0
	for i, c := range m.Citizen.CPR {
		sum += int(c-'0') * w[i]
	}
	if sum%11 == 0 {
		t.Skip("example CPR happens to pass modulus 11; the explicit case in TestCheckManifestRules covers it")
	}
}
