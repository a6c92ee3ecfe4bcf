// Package ident checks the Danish identifiers that business rules meet:
// CVR numbers (organisations), GLN/EAN location numbers (EDI mailboxes) and
// CPR numbers (persons).
//
// The checks are deliberately lenient where the issuing authority is: a CPR
// number is checked for format and a real birth date only, never for the
// modulus-11 check digit, because CPR numbers without a valid check digit
// have been issued since 1 October 2007 (cpr.dk, "Personnumre uden
// kontrolciffer"). CVR numbers carry a modulus-11 check (weights 2,7,6,5,4,3,
// 2,1; Erhvervsstyrelsen) and GLNs a GS1 mod-10 check digit.
//
// The functions take the bare digits: callers strip a "DDMMYY-SSSS" hyphen or
// spaces themselves, so that what is checked is exactly what is stored.
package ident

import "time"

// cvrWeights are the modulus-11 weights of the eight CVR digits.
var cvrWeights = [8]int{2, 7, 6, 5, 4, 3, 2, 1}

// ValidCVR reports whether s is a CVR number: exactly eight ASCII digits, not
// starting with 0 (CVR numbers run from 10000000), whose weighted digit sum
// with weights 2,7,6,5,4,3,2,1 is divisible by 11.
func ValidCVR(s string) bool {
	if len(s) != 8 || !digits(s) || s[0] == '0' {
		return false
	}
	sum := 0
	for i := range 8 {
		sum += int(s[i]-'0') * cvrWeights[i]
	}
	return sum%11 == 0
}

// ValidGLN reports whether s is a GS1 Global Location Number (the Danish
// "EAN-lokationsnummer"): exactly 13 ASCII digits whose last digit is the GS1
// mod-10 check digit of the first twelve (weights 3 and 1 alternating from
// the right, starting with 3 next to the check digit).
func ValidGLN(s string) bool {
	if len(s) != 13 || !digits(s) {
		return false
	}
	sum := 0
	for i := range 12 {
		d := int(s[i] - '0')
		if i%2 == 1 { // positions 2,4,...,12 from the left weigh 3 in a 13-digit key
			d *= 3
		}
		sum += d
	}
	return (10-sum%10)%10 == int(s[12]-'0')
}

// ValidCPRFormat reports whether s has the form of a CPR number: exactly ten
// ASCII digits DDMMYYSSSS where DDMMYY is a real calendar date. The century
// comes from the seventh digit together with YY, as the CPR office defines it:
//
//	7th digit 0-3: 1900-1999
//	7th digit 4:   2000-2036 if YY <= 36, else 1937-1999
//	7th digit 5-8: 2000-2057 if YY <= 57, else 1858-1899
//	7th digit 9:   2000-2036 if YY <= 36, else 1937-1999
//
// Erstatningspersonnumre (substitute numbers) have 60 added to the day and
// are accepted. The modulus-11 check digit is never checked: numbers without
// one have been issued since 2007 and are valid.
func ValidCPRFormat(s string) bool {
	if len(s) != 10 || !digits(s) {
		return false
	}
	day := two(s[0:2])
	month := two(s[2:4])
	yy := two(s[4:6])
	if day > 60 {
		day -= 60 // erstatningspersonnummer
	}
	var century int
	switch d7 := s[6] - '0'; {
	case d7 <= 3:
		century = 1900
	case d7 == 4 || d7 == 9:
		century = 1900
		if yy <= 36 {
			century = 2000
		}
	default: // 5-8
		century = 1800
		if yy <= 57 {
			century = 2000
		}
	}
	if month < 1 || month > 12 || day < 1 {
		return false
	}
	year := century + yy
	t := time.Date(year, time.Month(month), day, 12, 0, 0, 0, time.UTC)
	return t.Day() == day && int(t.Month()) == month && t.Year() == year
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// two parses two ASCII digits already known to be digits.
func two(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }
