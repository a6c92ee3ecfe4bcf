package xmlsig

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/rehabgw/rehabgw/internal/testenv"
)

// The independent verifier: xmlsec1 (libxmlsec1 with OpenSSL). Always with
// --enabled-key-data x509, without which xmlsec1 trusts an embedded key.
//
// xmlsec1 splits --id-attr:ID <ns>:<name> at the LAST colon, so namespaces
// that contain colons (urn:rehabgw:manifest:v1) work as they are.

type xmlsec struct {
	t   *testing.T
	bin string
	dir string
}

func newXmlsec(t *testing.T) *xmlsec {
	t.Helper()
	bin := testenv.RequireTool(t, "xmlsec1")
	return &xmlsec{t: t, bin: bin, dir: t.TempDir()}
}

func (x *xmlsec) file(name string, data []byte) string {
	x.t.Helper()
	p := filepath.Join(x.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		x.t.Fatal(err)
	}
	return p
}

func (x *xmlsec) run(args ...string) (string, error) {
	x.t.Helper()
	out, err := exec.Command(x.bin, args...).CombinedOutput()
	return string(out), err
}

// verify runs xmlsec1 --verify against the test root CA.
func (x *xmlsec) verify(doc []byte, idAttr string) (string, error) {
	x.t.Helper()
	p := getPKI(x.t)
	ca := x.file("CA.pem", certPEM(p.root.cert))
	f := x.file("signed.xml", doc)
	return x.run("--verify", "--enabled-key-data", "x509", "--trusted-pem", ca, "--id-attr:ID", idAttr, f)
}

const (
	manifestIDAttr   = manifestNS + ":Manifest"
	acceptanceIDAttr = acceptanceNS + ":Acceptance"
)

func TestXmlsec1VerifiesOurSignatures(t *testing.T) {
	x := newXmlsec(t)
	p := getPKI(t)
	sign := func(kc keyCert, chain []*x509.Certificate, doc []byte) []byte {
		out, err := p.signer(t, kc, chain...).Sign(doc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		doc    func() []byte
		idAttr string
		ok     bool
		why    string // for failures: a phrase xmlsec1 must print
	}{
		{"ok/rsa-manifest", func() []byte { return signedManifest(t) }, manifestIDAttr, true, ""},
		{"ok/rsa-manifest-100-elements", func() []byte { return sign(p.leafRSA, nil, manifest("m1", 29)) }, manifestIDAttr, true, ""},
		{"ok/rsa-intermediate-in-keyinfo", func() []byte { return sign(p.leafInter, []*x509.Certificate{p.inter.cert}, manifest("m1", 3)) }, manifestIDAttr, true, ""},
		{"ok/rsa-acceptance", func() []byte { return sign(p.leafRSA, nil, acceptance("a1")) }, acceptanceIDAttr, true, ""},
		{"ok/rsa-cr-tab-in-attribute", func() []byte {
			return sign(p.leafRSA, nil, []byte(`<Manifest xmlns="`+manifestNS+`" ID="m1"><CaseID note="a&#13;b&#9;c">`+origCaseID+`&#13;</CaseID></Manifest>`))
		}, manifestIDAttr, true, ""},
		// ECDSA in the standard r||s form (test builder; the Signer refuses
		// ECDSA, see TestGoxmldsigECDSAIsDER).
		{"ok/ecdsa-p256-raw-rs", func() []byte {
			return buildSigned(t, manifest("m1", 3), sigSpec{key: p.leafEC.key, certs: []*x509.Certificate{p.leafEC.cert}})
		}, manifestIDAttr, true, ""},
		{"fail/tampered-caseid", func() []byte {
			return bytes.Replace(signedManifest(t), []byte(origCaseID), []byte(evilCaseID), 1)
		}, manifestIDAttr, false, "data and digest do not match"},
		{"fail/tampered-cpr", func() []byte {
			return bytes.Replace(signedManifest(t), []byte(testCPR), []byte(evilCPR), 1)
		}, manifestIDAttr, false, "data and digest do not match"},
		{"fail/attacker-self-signed", func() []byte {
			return buildSigned(t, manifest("m1", 3), sigSpec{key: p.attacker.key, certs: []*x509.Certificate{p.attacker.cert}})
		}, manifestIDAttr, false, "self-signed certificate"},
		{"fail/intermediate-missing", func() []byte { return sign(p.leafInter, nil, manifest("m1", 3)) }, manifestIDAttr, false, "unable to get local issuer certificate"},
		{"fail/wrong-id-attr-namespace", func() []byte { return signedManifest(t) }, "urn:rehabgw:manifest:v2:Manifest", false, "xpointer(id('m1'))"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc()
			out, err := x.verify(doc, tc.idAttr)
			if tc.ok && err != nil {
				t.Fatalf("xmlsec1 rejects: %v\n%s", err, out)
			}
			if !tc.ok && err == nil {
				t.Fatalf("xmlsec1 accepts:\n%s", out)
			}
			if !tc.ok && !strings.Contains(out, tc.why) {
				t.Fatalf("xmlsec1 rejects, but not with %q:\n%s", tc.why, out)
			}
		})
	}
}

// template is an unsigned document with an empty XML-DSig template in the
// exact shape the policy allows.
func template(rootID, method string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<Manifest xmlns="` + manifestNS + `" ID="` + rootID + `">
  <CaseID>` + origCaseID + `</CaseID>
  <Citizen><CPR>` + testCPR + `</CPR></Citizen>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="` + method + `"/><ds:Reference URI="#` + rootID + `"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature></Manifest>
`)
}

func (x *xmlsec) sign(tmpl []byte, key keyCert, chain ...*x509.Certificate) []byte {
	x.t.Helper()
	k := x.file("key.pem", keyPEM(key.key))
	files := []string{k, x.file("leaf.pem", certPEM(key.cert))}
	for i, c := range chain {
		files = append(files, x.file("chain"+string(rune('0'+i))+".pem", certPEM(c)))
	}
	in := x.file("template.xml", tmpl)
	outPath := filepath.Join(x.dir, "xmlsec-signed.xml")
	if out, err := x.run("--sign", "--privkey-pem", strings.Join(files, ","), "--id-attr:ID", manifestIDAttr, "--output", outPath, in); err != nil {
		x.t.Fatalf("xmlsec1 --sign: %v\n%s", err, out)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		x.t.Fatal(err)
	}
	return b
}

func TestXmlsec1SignaturesVerifyHere(t *testing.T) {
	x := newXmlsec(t)
	p := getPKI(t)
	for _, tc := range []struct {
		name      string
		key       keyCert
		chain     []*x509.Certificate
		method    string
		wantChain int
	}{
		{"ok/rsa-sha256", p.leafRSA, nil, AlgRSASHA256, 2},
		{"ok/rsa-sha256-intermediate-in-keyinfo", p.leafInter, []*x509.Certificate{p.inter.cert}, AlgRSASHA256, 3},
		{"ok/ecdsa-p256-sha256", p.leafEC, nil, AlgECDSASHA256, 2},
		{"ok/ecdsa-p384-sha384", p.leafEC384, nil, AlgECDSASHA384, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signed := x.sign(template("m1", tc.method), tc.key, tc.chain...)
			if out, err := x.verify(signed, manifestIDAttr); err != nil {
				t.Fatalf("xmlsec1 does not verify its own signature: %v\n%s", err, out)
			}
			v, err := Verify(signed, p.policy())
			if err != nil {
				t.Fatalf("Verify(xmlsec1 --sign output): %v\n%s", err, signed)
			}
			if got := childText(v.Element, "./CaseID"); got != origCaseID {
				t.Errorf("CaseID = %q", got)
			}
			if len(v.Chain) != tc.wantChain {
				t.Errorf("chain length %d, want %d", len(v.Chain), tc.wantChain)
			}
			tampered := bytes.Replace(signed, []byte(testCPR), []byte(evilCPR), 1)
			_, err = Verify(tampered, p.policy())
			wantCode(t, err, CodeInvalid)
		})
	}
}

// TestGoxmldsigECDSAIsDER records the finding that makes Signer refuse
// ECDSA: goxmldsig v1.6.1 writes an ECDSA SignatureValue as ASN.1 DER (the
// output of crypto.Signer.Sign), XML-DSig requires r||s, and so xmlsec1
// rejects it; in the other direction goxmldsig alone rejects xmlsec1's
// standard r||s signatures (Verify converts them first).
func TestGoxmldsigECDSAIsDER(t *testing.T) {
	p := getPKI(t)
	d := etree.NewDocument()
	if err := d.ReadFromBytes(manifest("m1", 1)); err != nil {
		t.Fatal(err)
	}
	ctx, err := dsig.NewSigningContext(p.leafEC.key, [][]byte{p.leafEC.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(AlgECDSASHA256); err != nil {
		t.Fatal(err)
	}
	signedEl, err := ctx.SignEnveloped(d.Root())
	if err != nil {
		t.Fatal(err)
	}
	d.SetRoot(signedEl)
	native, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(parseDoc(t, native).Root().FindElement("./Signature/SignatureValue").Text()), ""))
	if len(sv) == 64 || sv[0] != 0x30 {
		t.Fatalf("goxmldsig wrote a %d-byte ECDSA SignatureValue starting %#x; the finding (DER) no longer holds, revisit NewSigner", len(sv), sv[0])
	}
	if err := goxmldsigAlone(t, native, p.leafEC.cert); err != nil {
		t.Fatalf("goxmldsig does not verify its own DER signature: %v", err)
	}
	_, err = Verify(native, p.policy())
	wantCode(t, err, CodeInvalid)

	x := newXmlsec(t)
	if out, err := x.verify(native, manifestIDAttr); err == nil {
		t.Fatalf("xmlsec1 accepts goxmldsig's DER ECDSA signature; the finding no longer holds:\n%s", out)
	}
	std := x.sign(template("m1", AlgECDSASHA256), p.leafEC)
	if err := goxmldsigAlone(t, std, p.leafEC.cert); err == nil {
		t.Fatal("goxmldsig alone accepts xmlsec1's r||s ECDSA signature; the finding no longer holds")
	}
	if _, err := Verify(std, p.policy()); err != nil {
		t.Fatalf("Verify rejects xmlsec1's r||s ECDSA signature: %v", err)
	}
}
