package bundle_test

import (
	"path/filepath"
	"testing"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
)

// FuzzManifest feeds arbitrary bytes to the manifest pipeline (limits,
// schema, reading, rules, and signature verification): it must never panic,
// and every refusal must be a typed error that does not echo a CPR number.
func FuzzManifest(f *testing.F) {
	for _, p := range bundle.Purposes() {
		f.Add(readFile(f, filepath.Join(repoRoot(f), "examples", string(p), bundle.ManifestFile)))
	}
	f.Add([]byte(`<Manifest xmlns="urn:rehabgw:manifest:v1" ID="M-1"/>`))
	f.Add([]byte(`<!DOCTYPE m [<!ENTITY e "x">]><Manifest>&e;</Manifest>`))
	v := newValidator(f)
	tr := trust(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := v.Manifest(data)
		if err == nil && m == nil {
			t.Fatal("no manifest and no error")
		}
		for _, e := range errs.Flatten(err) {
			if e.Code == "" || e.Code == "internal" {
				t.Fatalf("untyped error: %v", err)
			}
		}
		if m != nil && len(m.Citizen.CPR) == 10 {
			assertNoCPRf(t, err, m.Citizen.CPR)
		}
		m2, _, err := v.VerifyManifest(data, tr)
		if err == nil && (m2 == nil || m2.BundleID == "") {
			t.Fatal("verified without a manifest")
		}
	})
}

func assertNoCPRf(t *testing.T, err error, cpr string) {
	t.Helper()
	if err != nil && len(cpr) == 10 {
		for _, e := range errs.Flatten(err) {
			if contains(e.Msg, cpr) || contains(e.Path, cpr) {
				t.Fatalf("CPR number in error: %v", e)
			}
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
