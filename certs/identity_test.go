package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// selfSigned makes a throw-away certificate with the given subject; if raw is
// not nil it is used as the DER subject verbatim.
func selfSigned(t *testing.T, key *ecdsa.PrivateKey, subject pkix.Name, raw []byte) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      subject,
		RawSubject:   raw,
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rawName(t *testing.T, rdns pkix.RDNSequence) []byte {
	t.Helper()
	b, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdentityOf(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	oidCN := asn1.ObjectIdentifier{2, 5, 4, 3}
	sn := func(v string) pkix.Name { return pkix.Name{CommonName: "x", SerialNumber: v} }
	long := strings.Repeat("a", 64)

	cases := []struct {
		name    string
		subject pkix.Name
		raw     pkix.RDNSequence
		want    Identity
		code    string // "" = ok
	}{
		{name: "ok/dev-style-uid", subject: sn("CVR:64942212-UID:rehabgw-dev-kommune-101"), want: Identity{"64942212", "rehabgw-dev-kommune-101"}},
		{name: "ok/numeric-uid", subject: sn("CVR:29190623-UID:1234567890123"), want: Identity{"29190623", "1234567890123"}},
		{name: "ok/uid-64", subject: sn("CVR:55133018-UID:" + long), want: Identity{"55133018", long}},
		{name: "ok/uid-contains-UID-text", subject: sn("CVR:55133018-UID:x-UID-y"), want: Identity{"55133018", "x-UID-y"}},
		{name: "ok/with-other-attributes", subject: pkix.Name{CommonName: "Aarhus Kommune", Organization: []string{"Aarhus Kommune"}, Country: []string{"DK"}, SerialNumber: "CVR:55133018-UID:1"}, want: Identity{"55133018", "1"}},
		{name: "fail/missing", subject: pkix.Name{CommonName: "no serial"}, code: CodeIdentityMissing},
		{name: "fail/empty-subject", subject: pkix.Name{}, code: CodeIdentityMissing},
		{name: "fail/cvr-only", subject: sn("CVR:64942212"), code: CodeIdentityMalformed},
		{name: "fail/bare-number", subject: sn("64942212"), code: CodeIdentityMalformed},
		{name: "fail/lowercase-prefix", subject: sn("cvr:64942212-UID:1"), code: CodeIdentityMalformed},
		{name: "fail/rid-not-uid", subject: sn("CVR:64942212-RID:1234"), code: CodeIdentityMalformed},
		{name: "fail/fid-not-uid", subject: sn("CVR:64942212-FID:1234"), code: CodeIdentityMalformed},
		{name: "fail/empty-uid", subject: sn("CVR:64942212-UID:"), code: CodeIdentityMalformed},
		{name: "fail/uid-65", subject: sn("CVR:64942212-UID:" + long + "b"), code: CodeIdentityMalformed},
		{name: "fail/uid-underscore", subject: sn("CVR:64942212-UID:a_b"), code: CodeIdentityMalformed},
		{name: "fail/uid-space", subject: sn("CVR:64942212-UID:a b"), code: CodeIdentityMalformed},
		{name: "fail/uid-non-ascii", subject: sn("CVR:64942212-UID:æ"), code: CodeIdentityMalformed},
		{name: "fail/cvr-7-digits", subject: sn("CVR:6494221-UID:1"), code: CodeIdentityMalformed},
		{name: "fail/cvr-9-digits", subject: sn("CVR:649422120-UID:1"), code: CodeIdentityMalformed},
		{name: "fail/cvr-space", subject: sn("CVR: 64942212-UID:1"), code: CodeIdentityMalformed},
		{name: "fail/cvr-letter", subject: sn("CVR:6494221X-UID:1"), code: CodeIdentityMalformed},
		{name: "fail/cvr-checksum", subject: sn("CVR:64942213-UID:1"), code: CodeIdentityCVR},
		{name: "fail/cvr-zeros", subject: sn("CVR:00000000-UID:1"), code: CodeIdentityCVR},
		{
			name: "fail/duplicate-serialnumber-same-value",
			raw: pkix.RDNSequence{
				{{Type: oidSerialNumber, Value: "CVR:64942212-UID:1"}},
				{{Type: oidCN, Value: "x"}},
				{{Type: oidSerialNumber, Value: "CVR:64942212-UID:1"}},
			},
			code: CodeIdentityDuplicate,
		},
		{
			name: "fail/duplicate-serialnumber-multivalued-rdn",
			raw: pkix.RDNSequence{
				{{Type: oidCN, Value: "x"}},
				{{Type: oidSerialNumber, Value: "CVR:64942212-UID:1"}, {Type: oidSerialNumber, Value: "CVR:55133018-UID:1"}},
			},
			code: CodeIdentityDuplicate,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			if tc.raw != nil {
				raw = rawName(t, tc.raw)
			}
			cert := selfSigned(t, key, tc.subject, raw)
			got, err := IdentityOf(cert)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				if s := got.String(); s != cert.Subject.SerialNumber {
					t.Fatalf("String() = %q, want %q", s, cert.Subject.SerialNumber)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %+v", got)
			}
			if c := errs.CodeOf(err); c != tc.code {
				t.Fatalf("code %s, want %s (%v)", c, tc.code, err)
			}
			if k := errs.KindOf(err); k != errs.Unauthenticated {
				t.Fatalf("kind %v, want unauthenticated", k)
			}
			if got != (Identity{}) {
				t.Fatalf("identity %+v returned with an error", got)
			}
		})
	}
}

func TestIdentityOfNil(t *testing.T) {
	if _, err := IdentityOf(nil); errs.CodeOf(err) != CodeIdentityMissing {
		t.Fatalf("err = %v", err)
	}
}

func TestIdentityString(t *testing.T) {
	if s := (Identity{CVR: "64942212", UID: "abc-1"}).String(); s != "CVR:64942212-UID:abc-1" {
		t.Fatal(s)
	}
}

func TestIdentityErrorDoesNotEchoInput(t *testing.T) {
	// A value with a CPR-like run must not come back in the message.
	_, err := ParseIdentity("CVR:64942212-UID:0101901234_x")
	if err == nil || strings.Contains(err.Error(), "0101901234") {
		t.Fatalf("err = %v", err)
	}
}
