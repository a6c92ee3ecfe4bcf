package registry

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rehabgw/rehabgw/gateway/ident"
)

// membership is the region of every municipality, written out independently
// of organisations.yaml (source: the DataCVR municipality->region filter
// list, which agrees with Danmarks Statistik's regional classification).
var membership = map[string]string{
	"region-1084": "101 147 151 153 155 157 159 161 163 165 167 169 173 175 183 185 187 190 201 210 217 219 223 230 240 250 260 270 400",
	"region-1085": "253 259 265 269 306 316 320 326 329 330 336 340 350 360 370 376 390",
	"region-1083": "410 420 430 440 450 461 479 480 482 492 510 530 540 550 561 563 573 575 580 607 621 630",
	"region-1082": "615 657 661 665 671 706 707 710 727 730 740 741 746 751 756 760 766 779 791",
	"region-1081": "773 787 810 813 820 825 840 846 849 851 860",
}

func TestDefaultRegionsAndCounts(t *testing.T) {
	r := Default()
	wantCounts := map[string]int{"region-1084": 29, "region-1085": 17, "region-1083": 22, "region-1082": 19, "region-1081": 11}
	got := map[string]int{}
	kommuner := 0
	for _, o := range r.All() {
		if o.Kind != KindKommune {
			continue
		}
		kommuner++
		got[o.Region]++
	}
	if kommuner != 98 {
		t.Errorf("%d kommuner, want 98", kommuner)
	}
	for id, n := range wantCounts {
		if got[id] != n {
			t.Errorf("%s has %d kommuner, want %d", id, got[id], n)
		}
	}
	for regionID, codes := range membership {
		for _, code := range strings.Fields(codes) {
			k, ok := r.ByMunicipalityCode(code)
			if !ok {
				t.Errorf("kommune %s missing", code)
				continue
			}
			if k.Region != regionID {
				t.Errorf("kommune %s (%s) is in %s, want %s", code, k.Name, k.Region, regionID)
			}
			reg, ok := r.RegionOf(k.ID)
			if !ok || reg.ID != regionID || reg.Kind != KindRegion {
				t.Errorf("RegionOf(%s) = %v, %v; want %s", k.ID, reg, ok, regionID)
			}
		}
	}
}

func TestDefaultEveryOrganisation(t *testing.T) {
	r := Default()
	all := r.All()
	if len(all) != 98+5+1 {
		t.Fatalf("%d organisations, want 104", len(all))
	}
	if !slices.IsSortedFunc(all, func(a, b *Organisation) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("All() is not sorted by ID")
	}
	var missingCVR []string
	for _, o := range all {
		if o.CVR == "" {
			missingCVR = append(missingCVR, o.ID)
		} else if !ident.ValidCVR(o.CVR) {
			t.Errorf("%s: CVR %s fails modulus 11", o.ID, o.CVR)
		}
		if by, ok := r.ByCVR(o.CVR); o.CVR != "" && (!ok || by.ID != o.ID) {
			t.Errorf("ByCVR(%s) does not return %s", o.CVR, o.ID)
		}
		switch o.Kind {
		case KindKommune:
			if !strings.HasSuffix(o.Name, " Kommune") && o.Name != "Bornholms Regionskommune" {
				t.Errorf("%s: unexpected official name %q", o.ID, o.Name)
			}
			if o.ID != "kommune-"+o.Code || len(o.Code) != 3 || o.Functions != nil {
				t.Errorf("%s: inconsistent %+v", o.ID, o)
			}
		case KindRegion:
			if o.ID != "region-"+o.Code || !strings.HasPrefix(o.Name, "Region ") || o.Region != "" {
				t.Errorf("%s: inconsistent %+v", o.ID, o)
			}
			if len(o.Functions) != 2 || o.Functions[FunctionSundhedskoordinator].Name == "" || o.Functions[FunctionKliniskFunktion].Name == "" {
				t.Errorf("%s: functions %+v", o.ID, o.Functions)
			}
		case KindOperator:
			if o.ID != OperatorID {
				t.Errorf("operator has ID %s", o.ID)
			}
		default:
			t.Errorf("%s: kind %q", o.ID, o.Kind)
		}
	}
	// Every CVR was established from public data; if one ever goes missing
	// the report must say so, so this test names them.
	if len(missingCVR) > 0 {
		t.Errorf("organisations without CVR: %v", missingCVR)
	}
}

func TestDefaultKnownFacts(t *testing.T) {
	r := Default()
	cases := []struct {
		code, name, cvr, region string
	}{
		{"101", "Københavns Kommune", "64942212", "region-1084"},
		{"147", "Frederiksberg Kommune", "11259979", "region-1084"},
		{"400", "Bornholms Regionskommune", "26696348", "region-1084"},
		{"751", "Aarhus Kommune", "55133018", "region-1082"},
		{"461", "Odense Kommune", "35209115", "region-1083"},
		{"851", "Aalborg Kommune", "29189420", "region-1081"},
		{"265", "Roskilde Kommune", "29189404", "region-1085"},
		{"825", "Læsø Kommune", "45973328", "region-1081"},
		{"492", "Ærø Kommune", "28856075", "region-1083"},
	}
	for _, tc := range cases {
		k, ok := r.ByMunicipalityCode(tc.code)
		if !ok {
			t.Errorf("kommune %s missing", tc.code)
			continue
		}
		if k.Name != tc.name || k.CVR != tc.cvr || k.Region != tc.region || k.Kind != KindKommune {
			t.Errorf("kommune %s = %+v, want %s %s %s", tc.code, k, tc.name, tc.cvr, tc.region)
		}
	}
	regions := []struct{ code, name, cvr string }{
		{"1081", "Region Nordjylland", "29190941"},
		{"1082", "Region Midtjylland", "29190925"},
		{"1083", "Region Syddanmark", "29190909"},
		{"1084", "Region Hovedstaden", "29190623"},
		{"1085", "Region Sjælland", "29190658"},
	}
	for _, tc := range regions {
		reg, ok := r.ByID("region-" + tc.code)
		if !ok || reg.Name != tc.name || reg.CVR != tc.cvr || reg.Code != tc.code {
			t.Errorf("region %s = %+v, %v; want %s %s", tc.code, reg, ok, tc.name, tc.cvr)
		}
	}
	if kf := mustID(t, r, "region-1084").Functions[FunctionKliniskFunktion].Name; kf != "Socialmedicinsk Center, Frederiksberg Hospital" {
		t.Errorf("Hovedstaden klinisk funktion = %q", kf)
	}
	if kf := mustID(t, r, "region-1082").Functions[FunctionKliniskFunktion].Name; kf != "Socialmedicin og Rehabilitering, Gødstrup" {
		t.Errorf("Midtjylland klinisk funktion = %q", kf)
	}
	op := mustID(t, r, OperatorID)
	if op.Kind != KindOperator || !ident.ValidCVR(op.CVR) {
		t.Errorf("operator = %+v", op)
	}
	if _, ok := r.RegionOf(OperatorID); ok {
		t.Error("RegionOf(operator) should be false")
	}
	if by, ok := r.ByCVR(op.CVR); !ok || by.ID != OperatorID {
		t.Error("operator not found by its CVR")
	}
}

func mustID(t *testing.T, r *Registry, id string) *Organisation {
	t.Helper()
	o, ok := r.ByID(id)
	if !ok {
		t.Fatalf("%s missing", id)
	}
	return o
}

func TestByMunicipalityCode(t *testing.T) {
	r := Default()
	cases := []struct {
		name string
		in   string
		want string // "" = not found
	}{
		{"ok/dst", "101", "kommune-101"},
		{"ok/dagi", "0101", "kommune-101"},
		{"ok/dagi-aarhus", "0751", "kommune-751"},
		{"ok/bornholm", "400", "kommune-400"},
		{"fail/christianso-is-not-a-kommune", "411", ""},
		{"fail/christianso-dagi", "0411", ""},
		{"fail/region-code", "1084", ""},
		{"fail/unknown", "999", ""},
		{"fail/two-digits", "10", ""},
		{"fail/leading-zero-3", "010", ""},
		{"fail/empty", "", ""},
		{"fail/letters", "abc", ""},
		{"fail/padded", " 101", ""},
		{"fail/five-digits", "00101", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := r.ByMunicipalityCode(tc.in)
			if tc.want == "" {
				if ok {
					t.Fatalf("found %s", o.ID)
				}
				return
			}
			if !ok || o.ID != tc.want {
				t.Fatalf("got %v, %v; want %s", o, ok, tc.want)
			}
		})
	}
}

func TestLookupsMiss(t *testing.T) {
	r := Default()
	if _, ok := r.ByID("kommune-411"); ok {
		t.Error("kommune-411 found")
	}
	if _, ok := r.ByCVR(""); ok {
		t.Error("empty CVR found")
	}
	if _, ok := r.ByCVR("25775635"); ok { // Christiansø's administration
		t.Error("Christiansø CVR found")
	}
	if _, ok := r.RegionOf("nope"); ok {
		t.Error("RegionOf(nope) found")
	}
}

func TestResultsAreCopies(t *testing.T) {
	r := Default()
	o := mustID(t, r, "region-1084")
	o.Name = "changed"
	o.Functions[FunctionKliniskFunktion] = Function{Name: "changed"}
	all := r.All()
	all[0].Name = "changed"
	again := mustID(t, r, "region-1084")
	if again.Name != "Region Hovedstaden" || again.Functions[FunctionKliniskFunktion].Name == "changed" {
		t.Fatal("a caller's change reached the registry")
	}
	if r.All()[0].Name == "changed" {
		t.Fatal("All() shares state")
	}
}

func TestConcurrentUse(t *testing.T) {
	r := Default()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if o, ok := r.ByMunicipalityCode("0101"); !ok || o.ID != "kommune-101" {
					t.Error("lookup failed")
					return
				}
				if reg, ok := r.RegionOf("kommune-751"); !ok || reg.ID != "region-1082" {
					t.Error("RegionOf failed")
					return
				}
				_ = r.All()
			}
		}()
	}
	wg.Wait()
	if Default() != r {
		t.Error("Default() is not parsed once")
	}
}

func TestWithOperatorCVR(t *testing.T) {
	base := Default()
	r, err := base.WithOperatorCVR("29190623")
	if err == nil {
		t.Fatalf("accepted Region Hovedstaden's CVR for the operator: %v", r)
	}
	if _, err := base.WithOperatorCVR("12345678"); err == nil {
		t.Fatal("accepted a CVR failing modulus 11")
	}
	r, err = base.WithOperatorCVR("11111114") // not in the registry; passes mod 11
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := r.ByCVR("11111114"); !ok || o.ID != OperatorID {
		t.Fatalf("new operator CVR not indexed: %v %v", o, ok)
	}
	old := mustID(t, base, OperatorID).CVR
	if _, ok := r.ByCVR(old); ok {
		t.Error("old operator CVR still indexed")
	}
	if o := mustID(t, base, OperatorID); o.CVR != old {
		t.Error("WithOperatorCVR changed the original")
	}
}

// minimal is a small valid file; the failure cases edit it.
const minimal = `regions:
  - code: "1084"
    name: Region Hovedstaden
    cvr: "29190623"
    functions:
      sundhedskoordinator: {name: SK, sor: "", gln: ""}
      klinisk-funktion: {name: KF, sor: "328081000016004", gln: "5790000000005"}
kommuner:
  - {code: "101", name: Københavns Kommune, cvr: "64942212", region: region-1084}
  - {code: "147", name: Frederiksberg Kommune, cvr: "11259979", region: region-1084}
operator:
  name: Op
  cvr: "12345674"
`

func TestLoad(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string // substrings of the error; nil = ok
	}{
		{name: "ok/minimal", doc: minimal},
		{name: "ok/unquoted-numbers", doc: strings.Replace(minimal, `code: "147"`, `code: 147`, 1)},
		{name: "ok/empty-cvr-allowed", doc: strings.Replace(minimal, `cvr: "11259979"`, `cvr: ""`, 1)},
		{name: "fail/empty", doc: "\n\n", want: []string{"empty"}},
		{name: "fail/unknown-top-key", doc: minimal + "extra: 1\n", want: []string{"line 14", "extra"}},
		{name: "fail/unknown-kommune-key", doc: strings.Replace(minimal, `region: region-1084}`, `region: region-1084, gln: "1"}`, 1), want: []string{"line 9", "gln"}},
		{name: "fail/unknown-function", doc: strings.Replace(minimal, "      klinisk-funktion:", "      psykiatri: {name: P}\n      klinisk-funktion:", 1), want: []string{"line 7", "psykiatri"}},
		{name: "fail/missing-function", doc: strings.Replace(minimal, "      sundhedskoordinator: {name: SK, sor: \"\", gln: \"\"}\n", "", 1), want: []string{"line 2", "sundhedskoordinator: missing"}},
		{name: "fail/empty-function-name", doc: strings.Replace(minimal, "{name: SK,", "{name: \"\",", 1), want: []string{"name is empty"}},
		{name: "fail/duplicate-yaml-key", doc: strings.Replace(minimal, "  name: Op\n", "  name: Op\n  name: Op2\n", 1), want: []string{"line 13", "already defined"}},
		{name: "fail/type-mismatch", doc: strings.Replace(minimal, "kommuner:\n", "kommuner: {a: 1}\nx:\n", 1), want: []string{"line 8"}},
		{name: "fail/bad-kommune-cvr", doc: strings.Replace(minimal, `"64942212"`, `"64942213"`, 1), want: []string{"line 9", `kommune "101"`, "modulus 11"}},
		{name: "fail/bad-region-cvr", doc: strings.Replace(minimal, `"29190623"`, `"2919062"`, 1), want: []string{"line 2", "modulus 11"}},
		{name: "fail/bad-operator-cvr", doc: strings.Replace(minimal, `"12345674"`, `"12345678"`, 1), want: []string{"line 12", "operator"}},
		{name: "fail/dagi-code-in-file", doc: strings.Replace(minimal, `code: "101"`, `code: "0101"`, 1), want: []string{"line 9", "3 digits"}},
		{name: "fail/two-digit-code", doc: strings.Replace(minimal, `code: "101"`, `code: "10"`, 1), want: []string{"3 digits"}},
		{name: "fail/region-code", doc: strings.Replace(minimal, `code: "1084"`, `code: "84"`, 1), want: []string{"line 2", "4 digits"}},
		{name: "fail/unknown-region", doc: strings.Replace(minimal, `cvr: "11259979", region: region-1084`, `cvr: "11259979", region: region-1085`, 1), want: []string{"line 10", "region-1085"}},
		{name: "fail/region-by-code-not-id", doc: strings.Replace(minimal, `cvr: "11259979", region: region-1084`, `cvr: "11259979", region: "1084"`, 1), want: []string{"line 10"}},
		{name: "fail/duplicate-kommune", doc: strings.Replace(minimal, `code: "147"`, `code: "101"`, 1), want: []string{"line 10", "duplicate organisation ID kommune-101", "first at line 9"}},
		{name: "fail/duplicate-cvr", doc: strings.Replace(minimal, `"11259979"`, `"64942212"`, 1), want: []string{"line 10", "CVR 64942212 used by both kommune-101 and kommune-147"}},
		{name: "fail/operator-reuses-cvr", doc: strings.Replace(minimal, `"12345674"`, `"29190623"`, 1), want: []string{"used by both region-1084 and gateway-operator"}},
		{name: "fail/bad-gln", doc: strings.Replace(minimal, `"5790000000005"`, `"5790000000006"`, 1), want: []string{"GLN"}},
		{name: "fail/bad-sor", doc: strings.Replace(minimal, `"328081000016004"`, `"SOR-1"`, 1), want: []string{"SOR"}},
		{name: "fail/missing-operator", doc: minimal[:strings.Index(minimal, "operator:")], want: []string{"operator: missing"}},
		{name: "fail/blank-name", doc: strings.Replace(minimal, "name: Op\n", "name: \" Op\"\n", 1), want: []string{"leading or trailing space"}},
		{name: "fail/two-documents", doc: minimal + "---\nregions: []\n", want: []string{"more than one YAML document"}},
		{name: "fail/all-problems-reported", doc: strings.Replace(strings.Replace(minimal, `"64942212"`, `"64942213"`, 1), `code: "147"`, `code: "14"`, 1), want: []string{"line 9", "line 10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Load(strings.NewReader(tc.doc))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := r.ByMunicipalityCode("147"); !ok {
					t.Fatal("kommune 147 missing")
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadTooLarge(t *testing.T) {
	big := minimal + "#" + strings.Repeat("x", maxFileSize) + "\n"
	if _, err := Load(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmbeddedFileLoads(t *testing.T) {
	// Default panics on a broken file; this names the problem instead.
	if _, err := Load(bytes.NewReader(embedded)); err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{"# development only", "# to be configured"} {
		if !bytes.Contains(embedded, []byte(marker)) {
			t.Errorf("organisations.yaml lacks the %q marker", marker)
		}
	}
}
