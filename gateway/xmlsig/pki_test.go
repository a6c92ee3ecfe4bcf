package xmlsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test data that must never show up in an error message.
const (
	testCPR       = "0101901234"
	testCPRDash   = "010190-1234"
	signerCN      = "Sagsbehandler " + testCPRDash // a subject an attacker can copy
	manifestNS    = "urn:rehabgw:manifest:v1"
	acceptanceNS  = "urn:rehabgw:acceptance:v1"
	origCaseID    = "KK-2026-0001"
	evilCaseID    = "KK-6666-EVIL"
	evilCPR       = "3112999999"
	defaultRootID = "m1"
)

var (
	manifestRoot   = xml.Name{Space: manifestNS, Local: "Manifest"}
	acceptanceRoot = xml.Name{Space: acceptanceNS, Local: "Acceptance"}
)

type keyCert struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// testPKI is a throw-away PKI: a root CA, an intermediate, leaves of every
// kind the tests need, and an unrelated CA and an attacker.
type testPKI struct {
	now         time.Time
	root        keyCert
	inter       keyCert
	otherRoot   keyCert // a CA nobody trusts
	leafRSA     keyCert // RSA-2048 issued by root
	leafInter   keyCert // RSA-2048 issued by the intermediate
	leafWeak    keyCert // RSA-1024 issued by root
	leafEC      keyCert // ECDSA P-256 issued by root
	leafEC384   keyCert // ECDSA P-384 issued by root
	leafEC224   keyCert // ECDSA P-224 issued by root (weak)
	leafExpired keyCert // leafRSA's key, validity in the past
	leafNotYet  keyCert // leafRSA's key, validity in the future
	leafOtherCA keyCert // RSA-2048 issued by otherRoot
	leafNoSign  keyCert // leafRSA's key, KeyUsage without DigitalSignature
	leafEKU     keyCert // leafRSA's key, ExtKeyUsage clientAuth only
	attacker    keyCert // self-signed, same subject as leafRSA
	otherKey    crypto.Signer
	rootPool    *x509.CertPool
	interPool   *x509.CertPool
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func getPKI(tb testing.TB) *testPKI {
	tb.Helper()
	pkiOnce.Do(func() { pki = newPKI() })
	return pki
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

var serial int64

func issue(tmpl *x509.Certificate, key crypto.Signer, parent *keyCert) keyCert {
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return keyCert{key: key, cert: c}
}

func caTmpl(cn string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"rehabgw test"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func leafTmpl(cn string, nb, na time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Testkommune"}},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
}

func newPKI() *testPKI {
	// xmlsec1 checks validity against the real clock, so the PKI is built
	// around the current time.
	now := time.Now().Truncate(time.Second)
	p := &testPKI{now: now}
	nb, na := now.Add(-time.Hour), now.Add(30*24*time.Hour)

	p.root = issue(caTmpl("rehabgw test root", now), mustEC(elliptic.P256()), nil)
	interTmpl := caTmpl("rehabgw test intermediate", now)
	interTmpl.MaxPathLen, interTmpl.MaxPathLenZero = 0, true
	p.inter = issue(interTmpl, mustEC(elliptic.P256()), &p.root)
	p.otherRoot = issue(caTmpl("rehabgw test root", now), mustEC(elliptic.P256()), nil)

	rsaKey := mustRSA(2048)
	p.leafRSA = issue(leafTmpl(signerCN, nb, na), rsaKey, &p.root)
	p.leafInter = issue(leafTmpl("Intermediate-issued signer", nb, na), mustRSA(2048), &p.inter)
	p.leafWeak = issue(leafTmpl("Weak signer", nb, na), mustRSA(1024), &p.root)
	p.leafEC = issue(leafTmpl("EC signer", nb, na), mustEC(elliptic.P256()), &p.root)
	p.leafEC384 = issue(leafTmpl("EC384 signer", nb, na), mustEC(elliptic.P384()), &p.root)
	p.leafEC224 = issue(leafTmpl("EC224 signer", nb, na), mustEC(elliptic.P224()), &p.root)
	p.leafExpired = issue(leafTmpl(signerCN, now.Add(-60*24*time.Hour), now.Add(-30*24*time.Hour)), rsaKey, &p.root)
	p.leafNotYet = issue(leafTmpl(signerCN, now.Add(30*24*time.Hour), now.Add(60*24*time.Hour)), rsaKey, &p.root)
	p.leafOtherCA = issue(leafTmpl(signerCN, nb, na), mustRSA(2048), &p.otherRoot)
	noSign := leafTmpl(signerCN, nb, na)
	noSign.KeyUsage = x509.KeyUsageKeyEncipherment
	p.leafNoSign = issue(noSign, rsaKey, &p.root)
	eku := leafTmpl(signerCN, nb, na)
	eku.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.leafEKU = issue(eku, rsaKey, &p.root)
	// The attacker copies the trusted leaf's subject onto a self-signed
	// certificate for a key of their own.
	att := leafTmpl(signerCN, nb, na)
	p.attacker = issue(att, mustRSA(2048), nil)
	p.otherKey = mustRSA(2048)

	p.rootPool = x509.NewCertPool()
	p.rootPool.AddCert(p.root.cert)
	p.interPool = x509.NewCertPool()
	p.interPool.AddCert(p.inter.cert)
	return p
}

func (p *testPKI) policy() Policy {
	return Policy{
		Roots: p.rootPool,
		Now:   func() time.Time { return p.now },
		Root:  manifestRoot,
	}
}

func (p *testPKI) signer(tb testing.TB, kc keyCert, chain ...*x509.Certificate) *Signer {
	tb.Helper()
	s, err := NewSigner(kc.key, append([]*x509.Certificate{kc.cert}, chain...))
	if err != nil {
		tb.Fatalf("NewSigner: %v", err)
	}
	return s
}

func certPEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func keyPEM(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// manifest builds an unsigned manifest with a CaseID, a CPR and n parts.
func manifest(id string, parts int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<Manifest xmlns="%s" ID="%s">`, manifestNS, id)
	b.WriteString("\n  <CaseID>" + origCaseID + "</CaseID>\n")
	b.WriteString("  <Citizen><CPR>" + testCPR + "</CPR></Citizen>\n")
	b.WriteString("  <Parts>\n")
	for i := range parts {
		fmt.Fprintf(&b, `    <Part><Name>doc-%03d.xml</Name><SHA256>%064x</SHA256></Part>`+"\n", i, i)
	}
	b.WriteString("  </Parts>\n</Manifest>\n")
	return []byte(b.String())
}

func acceptance(id string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Acceptance xmlns="` + acceptanceNS + `" ID="` + id + `"><CaseID>` + origCaseID +
		`</CaseID><ManifestDigest>` + strings.Repeat("ab", 32) + `</ManifestDigest></Acceptance>`)
}
