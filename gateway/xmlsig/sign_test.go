package xmlsig

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"strings"
	"sync"
	"testing"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

func TestNewSigner(t *testing.T) {
	p := getPKI(t)
	for _, tc := range []struct {
		name  string
		key   func() crypto.Signer
		chain func() []*x509.Certificate
		code  string
	}{
		{"ok/rsa-2048", func() crypto.Signer { return p.leafRSA.key }, func() []*x509.Certificate { return []*x509.Certificate{p.leafRSA.cert} }, ""},
		{"ok/rsa-with-intermediate", func() crypto.Signer { return p.leafInter.key }, func() []*x509.Certificate { return []*x509.Certificate{p.leafInter.cert, p.inter.cert} }, ""},
		{"fail/key-does-not-match-leaf", func() crypto.Signer { return p.otherKey }, func() []*x509.Certificate { return []*x509.Certificate{p.leafRSA.cert} }, CodeKeyMismatch},
		{"fail/rsa-1024", func() crypto.Signer { return p.leafWeak.key }, func() []*x509.Certificate { return []*x509.Certificate{p.leafWeak.cert} }, CodeWeakKey},
		{"fail/ecdsa-p256-refused", func() crypto.Signer { return p.leafEC.key }, func() []*x509.Certificate { return []*x509.Certificate{p.leafEC.cert} }, CodeUnsupportedKey},
		{"fail/no-chain", func() crypto.Signer { return p.leafRSA.key }, func() []*x509.Certificate { return nil }, CodeConfig},
		{"fail/nil-key", func() crypto.Signer { return nil }, func() []*x509.Certificate { return []*x509.Certificate{p.leafRSA.cert} }, CodeConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSigner(tc.key(), tc.chain())
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !s.Certificate().Equal(tc.chain()[0]) {
					t.Fatal("Certificate() is not the leaf")
				}
				return
			}
			if errs.CodeOf(err) != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
			wantKind := errs.Invalid
			if tc.code == CodeConfig {
				wantKind = errs.Other
			}
			if errs.KindOf(err) != wantKind {
				t.Errorf("kind = %v, want %v", errs.KindOf(err), wantKind)
			}
			if tc.code == CodeUnsupportedKey && !strings.Contains(err.Error(), "r||s") {
				t.Errorf("ECDSA refusal does not explain why: %v", err)
			}
		})
	}
}

func TestSign(t *testing.T) {
	p := getPKI(t)
	s := p.signer(t, p.leafRSA)
	signed := signedManifest(t)
	for _, tc := range []struct {
		name string
		doc  []byte
		code string
	}{
		{"ok/manifest", manifest("m1", 3), ""},
		{"ok/prefixed-root", []byte(`<m:Manifest xmlns:m="` + manifestNS + `" ID="m1"><m:CaseID>` + origCaseID + `</m:CaseID></m:Manifest>`), ""},
		{"ok/root-prefix-ds-for-another-namespace", []byte(`<ds:Manifest xmlns:ds="` + manifestNS + `" ID="m1"><ds:CaseID>` + origCaseID + `</ds:CaseID></ds:Manifest>`), ""},
		{"ok/cr-tab-lf-in-attribute-and-cr-in-text", []byte(`<Manifest xmlns="` + manifestNS + `" ID="m1"><CaseID note="a&#13;b&#9;c&#10;d">` + origCaseID + `&#13;</CaseID></Manifest>`), ""},
		{"ok/markup-characters", []byte(`<Manifest xmlns="` + manifestNS + `" ID="m1"><CaseID q="&lt;&amp;&quot;'&gt;">` + origCaseID + `</CaseID><Note>&lt;&amp;&gt;"'</Note></Manifest>`), ""},
		{"ok/namespace-declared-on-child", []byte(`<Manifest xmlns="` + manifestNS + `" ID="m1"><x:Ext xmlns:x="urn:x" x:a="1"><CaseID>` + origCaseID + `</CaseID></x:Ext><CaseID>` + origCaseID + `</CaseID></Manifest>`), ""},
		{"fail/already-signed", signed, CodeAlreadySigned},
		{"fail/no-id", bytes.Replace(manifest("m1", 1), []byte(` ID="m1"`), nil, 1), CodeNoID},
		{"fail/id-bad-form", bytes.Replace(manifest("m1", 1), []byte(` ID="m1"`), []byte(` ID="#m1"`), 1), CodePolicy},
		{"fail/duplicate-id-value", bytes.Replace(manifest("m1", 1), []byte(`<CaseID>`), []byte(`<CaseID id="m1">`), 1), CodePolicy},
		{"fail/stray-dsig-element", []byte(`<Manifest xmlns="` + manifestNS + `" ID="m1"><ds:Object xmlns:ds="` + NamespaceDSig + `"/></Manifest>`), CodePolicy},
		{"fail/doctype", []byte(`<!DOCTYPE Manifest><Manifest xmlns="` + manifestNS + `" ID="m1"/>`), "xml.doctype"},
		{"fail/comment", []byte(`<Manifest xmlns="` + manifestNS + `" ID="m1"><!-- x --></Manifest>`), "xml.comment"},
		{"fail/too-many-elements-once-signed", manifest("m1", 295), "xml.elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.Sign(tc.doc)
			if tc.code != "" {
				if errs.CodeOf(err) != tc.code {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				if k := errs.KindOf(err); k != errs.Invalid && k != errs.TooLarge {
					t.Errorf("kind = %v, want invalid or too-large", k)
				}
				assertNoLeak(t, err)
				return
			}
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			checkSignedShape(t, out)
			pol := p.policy()
			root := parseDoc(t, tc.doc).Root()
			pol.Root.Space, pol.Root.Local = root.NamespaceURI(), root.Tag
			v, err := Verify(out, pol)
			if err != nil {
				t.Fatalf("Verify(Sign(doc)): %v", err)
			}
			if got := childText(v.Element, "./CaseID"); !strings.HasPrefix(got, origCaseID) {
				t.Errorf("verified CaseID = %q", got)
			}
			if tc.name == "ok/cr-tab-lf-in-attribute-and-cr-in-text" {
				ci := v.Element.FindElement("./CaseID")
				if ci.SelectAttrValue("note", "") != "a\rb\tc\nd" || ci.Text() != origCaseID+"\r" {
					t.Errorf("whitespace not preserved: %q %q", ci.SelectAttrValue("note", ""), ci.Text())
				}
			}
		})
	}
}

// checkSignedShape pins the exact form the Signer promises.
func checkSignedShape(t *testing.T, out []byte) {
	t.Helper()
	if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Errorf("no XML declaration: %.60s", out)
	}
	d := parseDoc(t, out)
	root := d.Root()
	kids := root.ChildElements()
	sig := kids[len(kids)-1]
	if sig.Space != "ds" || sig.Tag != "Signature" || sig.NamespaceURI() != NamespaceDSig {
		t.Fatalf("last child is %s:%s, want ds:Signature", sig.Space, sig.Tag)
	}
	want := map[string]string{
		"./SignedInfo/CanonicalizationMethod":            AlgExcC14N,
		"./SignedInfo/SignatureMethod":                   AlgRSASHA256,
		"./SignedInfo/Reference/DigestMethod":            AlgSHA256,
		"./SignedInfo/Reference/Transforms/Transform[1]": AlgEnveloped,
		"./SignedInfo/Reference/Transforms/Transform[2]": AlgExcC14N,
	}
	for path, alg := range want {
		e := sig.FindElement(path)
		if e == nil || e.SelectAttrValue("Algorithm", "") != alg {
			t.Errorf("%s: want Algorithm=%s", path, alg)
		}
	}
	if n := len(sig.FindElements("./SignedInfo/Reference")); n != 1 {
		t.Errorf("%d References", n)
	}
	if u := sig.FindElement("./SignedInfo/Reference").SelectAttrValue("URI", ""); u != "#"+root.SelectAttrValue("ID", "") {
		t.Errorf("Reference URI = %q", u)
	}
	if sig.FindElement("./KeyInfo/X509Data/X509Certificate") == nil {
		t.Error("no X509Certificate")
	}
}

func TestSignIntermediatesInKeyInfo(t *testing.T) {
	p := getPKI(t)
	out, err := p.signer(t, p.leafInter, p.inter.cert).Sign(manifest("m1", 1))
	if err != nil {
		t.Fatal(err)
	}
	certs := parseDoc(t, out).Root().FindElements("./Signature/KeyInfo/X509Data/X509Certificate")
	if len(certs) != 2 {
		t.Fatalf("%d certificates in KeyInfo, want leaf and intermediate", len(certs))
	}
}

func TestSignConcurrent(t *testing.T) {
	p := getPKI(t)
	s := p.signer(t, p.leafRSA)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			out, err := s.Sign(manifest("m1", 5))
			if err == nil {
				_, err = Verify(out, p.policy())
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
