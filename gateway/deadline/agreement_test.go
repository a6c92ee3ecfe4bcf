package deadline_test

// External tests of the agreements: the testdata files, the shipped example,
// and that this package's vocabulary agrees with package bundle's purposes
// and the registry's regions and functions (deadline does not import them,
// so that they may import deadline).

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/deadline"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

const exampleFile = "../../configs/agreements.example.yaml"

func knownRegion(id string) bool {
	o, ok := registry.Default().ByID(id)
	return ok && o.Kind == registry.KindRegion
}

// TestLoadTestdata loads testdata/ok/*.yaml (must load) and
// testdata/fail/*.yaml (must fail). A fail file's first line is
// "# want: <text>"; the line marked "# <-" is the line the problem must name
// (no marker: a problem without a line, whose text names it).
func TestLoadTestdata(t *testing.T) {
	oks, _ := filepath.Glob("testdata/ok/*.yaml")
	fails, _ := filepath.Glob("testdata/fail/*.yaml")
	if len(oks) < 3 || len(fails) < 40 {
		t.Fatalf("testdata missing: %d ok, %d fail files", len(oks), len(fails))
	}
	for _, f := range oks {
		t.Run("ok/"+strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			if _, err := deadline.LoadFile(f, deadline.LoadOptions{KnownRegion: knownRegion}); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, f := range fails {
		t.Run("fail/"+strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(data), "\n")
			want, ok := strings.CutPrefix(lines[0], "# want: ")
			if !ok {
				t.Fatal("first line is not # want: ...")
			}
			wantLine := 0
			for i, l := range lines {
				if strings.HasSuffix(l, "# <-") {
					wantLine = i + 1
				}
			}
			_, err = deadline.LoadFile(f, deadline.LoadOptions{KnownRegion: knownRegion})
			var le *deadline.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *LoadError", err)
			}
			for _, p := range le.Problems {
				if p.Line == wantLine && strings.Contains(p.Msg, want) {
					// The message as printed names the file and the line.
					if wantLine > 0 && !strings.Contains(err.Error(), f+":"+strconv.Itoa(wantLine)+": ") {
						t.Fatalf("error text does not name %s:%d:\n%v", f, wantLine, err)
					}
					return
				}
			}
			t.Fatalf("want line %d: %q; got:\n%v", wantLine, want, err)
		})
	}
}

func TestLoadEveryProblemReported(t *testing.T) {
	_, err := deadline.Load(strings.NewReader(`agreements:
  - region: region-1084
    version: "1"
    effective_from: 2025-01-01
    rules:
      - name: a
        party: kommune
        anchor: meeting_day
        hours: -1
        satisfied_by: bundle_received
`), deadline.LoadOptions{Filename: "x.yaml"})
	var le *deadline.LoadError
	if !errors.As(err, &le) || len(le.Problems) < 3 {
		t.Fatalf("want three problems or more, got %v", err)
	}
	for _, want := range []string{"x.yaml:7: ", "x.yaml:8: ", "x.yaml:9: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

func TestLoadUnknownRegion(t *testing.T) {
	src := `agreements:
  - region: region-1099
    version: "1"
    effective_from: 2025-01-01
    rules:
      - {name: a, party: municipality, anchor: meeting_date, workdays: -5, satisfied_by: {event: bundle_received, purpose: forberedelse}}
`
	if _, err := deadline.Load(strings.NewReader(src), deadline.LoadOptions{}); err != nil {
		t.Fatalf("fail/without a registry only the form is checked: %v", err)
	}
	_, err := deadline.Load(strings.NewReader(src), deadline.LoadOptions{KnownRegion: knownRegion})
	if err == nil || !strings.Contains(err.Error(), "agreements:2: ") || !strings.Contains(err.Error(), "not in the registry") {
		t.Fatalf("fail/unknown region: %v", err)
	}
}

func TestExampleFile(t *testing.T) {
	set, err := deadline.LoadFile(exampleFile, deadline.LoadOptions{KnownRegion: knownRegion})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(exampleFile)
	head := string(data[:600])
	for _, want := range []string{"EKSEMPEL", "IKKE", "EXAMPLE", "NOT any region"} {
		if !strings.Contains(strings.ToUpper(head), strings.ToUpper(want)) {
			t.Errorf("header lacks %q", want)
		}
	}
	if got := set.Regions(); !slices.Equal(got, []string{"region-1082", "region-1084"}) {
		t.Fatalf("regions %v", got)
	}
	if !set.HasExamples() {
		t.Fatal("HasExamples false")
	}
	wantRules := []string{"materiale-foer-moedet", "sk-henter-materiale", "sk-udtalelse-foer-moedet", "kf-henter-henvisning",
		"kf-attest", "indstilling-efter-moedet", "kopi-til-egen-laege", "kvittering-fra-egen-laege"}
	for _, a := range set.Agreements() {
		if !a.Example {
			t.Errorf("%s is not marked example: true", a.Key())
		}
		var names []string
		for _, r := range a.Rules {
			names = append(names, r.Name)
		}
		if !slices.Equal(names, wantRules) {
			t.Errorf("%s rules %v", a.Key(), names)
		}
	}
	v25, _ := set.Version("region-1084", "2025-1")
	v26, _ := set.Version("region-1084", "2026-1")
	r25, _ := v25.Rule("kf-attest")
	r26, _ := v26.Rule("kf-attest")
	if r25.Workdays != 20 || r26.Workdays != 15 {
		t.Errorf("kf-attest: 2025 %d, 2026 %d; want 20 then 15", r25.Workdays, r26.Workdays)
	}
	// Everything else is the same in both versions.
	for i := range v25.Rules {
		a, b := v25.Rules[i], v26.Rules[i]
		a.Line, b.Line, a.Description, b.Description = 0, 0, "", ""
		if a.Name != "kf-attest" && !equalRule(a, b) {
			t.Errorf("rule %s differs between the versions", a.Name)
		}
	}
	m, _ := set.Version("region-1082", "2025-1")
	if m.Calendar().IsWorkday(time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)) {
		t.Error("Midtjylland's example closed period not applied")
	}
	mat, _ := v26.Rule("materiale-foer-moedet")
	if mat.Party != deadline.PartyMunicipality || mat.Workdays != -5 || mat.Cutoff != "12:00" || mat.Anchor.Event != deadline.AnchorMeetingDate {
		t.Errorf("materiale-foer-moedet: %+v", mat)
	}
	kopi, _ := v26.Rule("kopi-til-egen-laege")
	kvit, _ := v26.Rule("kvittering-fra-egen-laege")
	if kopi.Unit != deadline.UnitHours || kopi.Hours != time.Hour || kopi.RollForward || kvit.Hours != 4*time.Hour || !kvit.RollForward {
		t.Errorf("hour rules: %+v %+v", kopi, kvit)
	}
}

func equalRule(a, b deadline.Rule) bool {
	return a.Name == b.Name && a.Party == b.Party && a.Anchor == b.Anchor && a.Unit == b.Unit && a.Workdays == b.Workdays &&
		a.Hours == b.Hours && a.Cutoff == b.Cutoff && a.RollForward == b.RollForward && a.SatisfiedBy == b.SatisfiedBy
}

func cph(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, deadline.Zone())
	if err != nil {
		panic(err)
	}
	return t
}

func TestInForce(t *testing.T) {
	set, err := deadline.LoadFile(exampleFile, deadline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		region string
		at     time.Time
		want   string // "" = none
	}{
		{"fail/before-the-first-version", "region-1084", cph("2024-12-31 23:59:59"), ""},
		{"ok/first-instant-of-2025", "region-1084", cph("2025-01-01 00:00:00"), "2025-1"},
		{"ok/mid-2025", "region-1084", cph("2025-06-30 12:00:00"), "2025-1"},
		{"ok/last-instant-of-2025", "region-1084", cph("2025-12-31 23:59:59"), "2025-1"},
		{"ok/first-instant-of-2026", "region-1084", cph("2026-01-01 00:00:00"), "2026-1"},
		// 23:30 UTC on 31 December is 00:30 on 1 January in Copenhagen.
		{"ok/copenhagen-day-not-utc-day", "region-1084", time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC), "2026-1"},
		{"ok/long-after", "region-1084", cph("2030-05-01 08:00:00"), "2026-1"},
		{"ok/one-version-region", "region-1082", cph("2027-01-01 08:00:00"), "2025-1"},
		{"fail/region-without-agreement", "region-1083", cph("2026-01-01 08:00:00"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := set.InForce(tc.region, tc.at)
			got := ""
			if ok {
				got = a.Version
			}
			if got != tc.want {
				t.Fatalf("InForce(%s, %s) = %q, want %q", tc.region, tc.at, got, tc.want)
			}
		})
	}
	a, _ := set.Version("region-1084", "2025-1")
	if a.InForceUntil.Format(time.DateOnly) != "2026-01-01" {
		t.Errorf("InForceUntil %s", a.InForceUntil)
	}
	b, _ := set.Version("region-1084", "2026-1")
	if !b.InForceUntil.IsZero() {
		t.Errorf("latest InForceUntil %s", b.InForceUntil)
	}
	if _, ok := set.Version("region-1084", "2024-1"); ok {
		t.Error("unknown version found")
	}
}

// TestVersionOrderInFile: versions may be listed in any order.
func TestVersionOrderInFile(t *testing.T) {
	set, err := deadline.LoadFile("testdata/ok/versions-and-aliases.yaml", deadline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ at, want string }{
		{"2025-03-01 10:00:00", "2025-1"}, {"2026-06-30 23:59:59", "2026-1"}, {"2026-07-01 00:00:00", "2026-2"},
	} {
		a, ok := set.InForce("region-1084", cph(tc.at))
		if !ok || a.Version != tc.want {
			t.Errorf("at %s: got %v, want %s", tc.at, a, tc.want)
		}
	}
	a, _ := set.Version("region-1084", "2025-1")
	if a.Calendar().IsWorkday(time.Date(2025, 7, 15, 0, 0, 0, 0, time.UTC)) || !a.Calendar().IsWorkday(time.Date(2025, 6, 5, 0, 0, 0, 0, time.UTC)) {
		t.Error("calendar of 2025-1 not applied")
	}
	r, _ := a.Rule("kvittering")
	if r.Hours != 30*time.Minute || r.SatisfiedBy.Event != deadline.EventGPReceiptReceived || r.SatisfiedBy.Purpose != "" {
		t.Errorf("kvittering %+v", r)
	}
}

// TestVocabularyMatchesBundleAndRegistry: the purposes and functions this
// package knows are those of package bundle and the registry.
func TestVocabularyMatchesBundleAndRegistry(t *testing.T) {
	var ps []string
	for _, p := range bundle.Purposes() {
		ps = append(ps, string(p))
		spec, _ := bundle.SpecOf(p)
		// A rule on a GP copy of p is accepted exactly when p goes to the GP.
		src := `agreements:
  - {region: region-1084, version: "1", effective_from: 2025-01-01, rules: [
      {name: a, party: gateway, anchor: {event: bundle_received, purpose: ` + string(p) + `}, hours: 1, satisfied_by: {event: gp_copy_sent, purpose: ` + string(p) + `}}]}
`
		_, err := deadline.Load(strings.NewReader(src), deadline.LoadOptions{})
		if (err == nil) != spec.NeedsGP {
			t.Errorf("gp_copy_sent purpose %s: err %v, NeedsGP %v", p, err, spec.NeedsGP)
		}
	}
	want := []string{deadline.PurposeForberedelse, deadline.PurposeIndstilling, deadline.PurposeHenvisning, deadline.PurposeSKUdtalelse, deadline.PurposeKlinikAttest}
	if !slices.Equal(ps, want) {
		t.Errorf("bundle purposes %v, deadline knows %v", ps, want)
	}
	if deadline.FunctionSundhedskoordinator != registry.FunctionSundhedskoordinator || deadline.FunctionKliniskFunktion != registry.FunctionKliniskFunktion ||
		deadline.FunctionKommune != string(registry.KindKommune) {
		t.Error("functions differ from the registry's")
	}
	for _, e := range []deadline.Event{
		{Type: deadline.EventBundleReceived, At: time.Now(), Purpose: "nope"},
		{Type: "bundle_lost", At: time.Now()},
	} {
		if e.Validate() == nil {
			t.Errorf("fail/event %+v accepted", e)
		}
	}
}
