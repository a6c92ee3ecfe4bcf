// Package certs turns X.509 certificates into gateway identities, loads trust
// stores and key pairs from PEM files, and creates the development PKI.
//
// # Identity
//
// A Danish organisation certificate (OCES/VOCES "virksomhedscertifikat")
// names its organisation in the subject serialNumber attribute
// (OID 2.5.4.5) as "CVR:<cvr>-UID:<uid>". IdentityOf reads it strictly:
// exactly one serialNumber attribute in the subject, a CVR number that passes
// modulus 11, and a UID of 1-64 characters from [A-Za-z0-9-]. The CVR number
// is what the gateway maps to an organisation through the registry
// (registry.Registry.ByCVR); the UID distinguishes certificates of the same
// organisation. Other serialNumber forms (FID, RID, PID, the OCES3
// organizationIdentifier) are refused.
//
// # Files
//
// LoadPool and LoadKeyPair read PEM files strictly and name the file in
// every error. Private keys stay behind crypto.Signer.
//
// # Development PKI
//
// GenerateDev writes a throw-away CA and leaf certificates for local work and
// tests; WriteTestPKI writes the fixed set committed under testdata/pki.
// Every generated subject says "DEVELOPMENT ONLY" in its O attribute. These
// keys must never be trusted by anything outside a developer's machine or a
// test run.
package certs

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/ident"
)

// Error codes of IdentityOf (kind errs.Unauthenticated).
const (
	CodeIdentityMissing   = "cert.identity_missing"   // no serialNumber attribute, or no certificate
	CodeIdentityDuplicate = "cert.identity_duplicate" // more than one serialNumber attribute
	CodeIdentityMalformed = "cert.identity_malformed" // not "CVR:<8 digits>-UID:<uid>"
	CodeIdentityCVR       = "cert.identity_cvr"       // the CVR fails modulus 11
)

// oidSerialNumber is the X.520 serialNumber attribute type.
var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// maxUIDLen bounds the UID part of an identity.
const maxUIDLen = 64

// Identity is the organisation identity a certificate carries.
type Identity struct {
	CVR string // 8 digits, modulus 11
	UID string // 1-64 characters of [A-Za-z0-9-]
}

// String returns the identity in certificate form, "CVR:<cvr>-UID:<uid>".
func (i Identity) String() string { return "CVR:" + i.CVR + "-UID:" + i.UID }

// IdentityOf returns the identity in cert's subject serialNumber. It refuses
// a subject with no or several serialNumber attributes (checked on every
// attribute of the raw subject, not on the single value that
// cert.Subject.SerialNumber keeps), a value not of the form
// "CVR:<cvr>-UID:<uid>", a CVR failing modulus 11, and a UID that is empty,
// longer than 64 characters or has characters outside [A-Za-z0-9-].
//
// Errors are *errs.Error of kind errs.Unauthenticated with one of the
// CodeIdentity* codes; their messages never repeat an unchecked value.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, errs.E(errs.Unauthenticated, CodeIdentityMissing, "no certificate")
	}
	var values []string
	for _, atv := range cert.Subject.Names {
		if !atv.Type.Equal(oidSerialNumber) {
			continue
		}
		s, ok := atv.Value.(string)
		if !ok {
			return Identity{}, errs.E(errs.Unauthenticated, CodeIdentityMalformed,
				"certificate subject serialNumber is not a string")
		}
		values = append(values, s)
	}
	switch len(values) {
	case 0:
		return Identity{}, errs.E(errs.Unauthenticated, CodeIdentityMissing,
			"certificate subject has no serialNumber attribute (want CVR:<cvr>-UID:<uid>)")
	case 1:
	default:
		return Identity{}, errs.E(errs.Unauthenticated, CodeIdentityDuplicate,
			"certificate subject has %d serialNumber attributes; exactly one is allowed", len(values))
	}
	return ParseIdentity(values[0])
}

// ParseIdentity parses "CVR:<cvr>-UID:<uid>" with the rules of IdentityOf.
func ParseIdentity(s string) (Identity, error) {
	const cvrPrefix, uidSep = "CVR:", "-UID:"
	malformed := func(why string) (Identity, error) {
		return Identity{}, errs.E(errs.Unauthenticated, CodeIdentityMalformed,
			"certificate subject serialNumber %s (want CVR:<cvr>-UID:<uid>)", why)
	}
	rest, ok := strings.CutPrefix(s, cvrPrefix)
	if !ok {
		return malformed(`does not start with "CVR:"`)
	}
	// The CVR part has no '-', so the first "-UID:" is the separator.
	cvr, uid, ok := strings.Cut(rest, uidSep)
	if !ok {
		return malformed(`has no "-UID:" part`)
	}
	if len(cvr) != 8 || !allDigits(cvr) {
		return malformed("has a CVR part that is not 8 digits")
	}
	if !ident.ValidCVR(cvr) {
		return Identity{}, errs.E(errs.Unauthenticated, CodeIdentityCVR,
			"certificate CVR %s fails the modulus-11 check", cvr)
	}
	if uid == "" {
		return malformed("has an empty UID")
	}
	if len(uid) > maxUIDLen {
		return malformed("has a UID longer than 64 characters")
	}
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return malformed("has a UID with characters outside [A-Za-z0-9-]")
		}
	}
	return Identity{CVR: cvr, UID: uid}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
