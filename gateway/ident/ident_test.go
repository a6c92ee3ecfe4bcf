package ident

import "testing"

func TestValidCVR(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"ok/kobenhavns-kommune", "64942212", true},
		{"ok/aarhus-kommune", "55133018", true},
		{"ok/region-hovedstaden", "29190623", true},
		{"ok/region-sjaelland", "29190658", true},
		{"ok/development-operator", "12345674", true},
		{"fail/checksum", "64942213", false},
		{"fail/transposed-digits", "46942212", false},
		{"fail/seven-digits", "6494221", false},
		{"fail/nine-digits", "649422120", false},
		{"fail/empty", "", false},
		{"fail/letter", "6494221a", false},
		{"fail/space", " 4942212", false},
		{"fail/leading-zero-passes-mod11", "00000000", false},
		{"fail/leading-zero", "01234567", false},
		{"fail/dk-prefix", "DK64942212", false},
		{"fail/fullwidth-digits", "６４９４２２１２", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidCVR(tc.in); got != tc.want {
				t.Errorf("ValidCVR(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestValidGLN(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"ok/danish-prefix", "5790000000005", true},
		{"ok/check-digit-0", "5798000362000", true},
		{"ok/check-digit-2", "5790041012302", true},
		{"fail/check-digit", "5790000000006", false},
		{"fail/transposed", "5970000000005", false},
		{"fail/twelve-digits", "579000000000", false},
		{"fail/fourteen-digits", "57900000000050", false},
		{"fail/letter", "579000000000X", false},
		{"fail/empty", "", false},
		{"fail/sor-code-is-not-a-gln", "328081000016004", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidGLN(tc.in); got != tc.want {
				t.Errorf("ValidGLN(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// cprMod11 is the historical CPR check (weights 4,3,2,7,6,5,4,3,2,1). The
// gateway must never apply it; the test uses it only to prove that its
// examples really do fail it.
func cprMod11(s string) bool {
	w := [10]int{4, 3, 2, 7, 6, 5, 4, 3, 2, 1}
	sum := 0
	for i := range 10 {
		sum += int(s[i]-'0') * w[i]
	}
	return sum%11 == 0
}

func TestValidCPRFormat(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"ok/1990-digit7-1", "0101901234", true},
		{"ok/digit7-0", "3112990123", true},
		{"ok/digit7-3", "1506753999", true},
		{"ok/digit7-4-2000s", "2902004001", true}, // 29 Feb 2000, leap year
		{"ok/digit7-4-1900s", "0101374000", true}, // YY 37 > 36: 1937
		{"ok/digit7-9-2036", "3112369000", true},
		{"ok/digit7-9-1937", "0101379000", true},
		{"ok/digit7-5-2057", "0101575000", true},
		{"ok/digit7-8-1858", "0101588000", true}, // YY 58 > 57: 1858
		{"ok/digit7-6-leap-2024", "2902246000", true},
		{"ok/post-2007-fails-mod11", "1507104321", true}, // 15 Jul 2010; see the mod-11 assertion below
		{"ok/post-2007-fails-mod11-2", "1203124570", true},
		{"ok/erstatningspersonnummer", "6101901234", true},      // day 61 = 1st
		{"ok/erstatningspersonnummer-31st", "9101901234", true}, // day 91 = 31st
		{"fail/nine-digits", "010190123", false},
		{"fail/eleven-digits", "01019012345", false},
		{"fail/hyphen", "010190-1234", false},
		{"fail/letter", "010190123X", false},
		{"fail/empty", "", false},
		{"fail/day-zero", "0001901234", false},
		{"fail/day-32", "3201901234", false},
		{"fail/month-zero", "0100901234", false},
		{"fail/month-13", "0113901234", false},
		{"fail/31-april", "3104901234", false},
		{"fail/29-feb-1900", "2902001234", false}, // digit7 1: 1900, not a leap year
		{"fail/29-feb-1937", "2902379000", false}, // digit7 9, YY 37: 1937
		{"fail/29-feb-1858", "2902585000", false}, // digit7 5, YY 58: 1858, not a leap year
		{"fail/29-feb-2001", "2902014000", false}, // digit7 4, YY 01: 2001
		{"fail/erstatning-day-60", "6001901234", false},
		{"fail/erstatning-31-feb", "9102901234", false},
		{"fail/erstatning-day-92", "9201901234", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidCPRFormat(tc.in); got != tc.want {
				t.Errorf("ValidCPRFormat(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	// The post-2007 examples must genuinely fail the old modulus-11 check,
	// or the test above proves nothing.
	for _, s := range []string{"1507104321", "1203124570"} {
		if cprMod11(s) {
			t.Errorf("%s passes modulus 11; pick an example that fails it", s)
		}
	}
	if !cprMod11("2902004001") {
		t.Errorf("control example 2902004001 should pass modulus 11")
	}
}
