package xmlsig

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// FuzzVerify checks that Verify never panics, that every refusal is a
// classified *errs.Error that leaks no CPR number, and that whenever it
// accepts, Verified.Element is exactly the content covered by the digest in
// the document's one signature and the certificate chains to the test root.
//
// The seeds (a valid document and a spread of attacks) run as an ordinary
// test; `go test -fuzz=FuzzVerify ./gateway/xmlsig/` explores further.
func FuzzVerify(f *testing.F) {
	p := getPKI(f)
	f.Add(signedManifest(f))
	f.Add(manifest(defaultRootID, 2))
	for _, name := range []string{
		"ok/rsa-intermediate-in-keyinfo",
		"ok/ecdsa-p256-raw-rs",
		"ok/benign/cdata-in-value",
		"fail/xsw1/evil-root-signed-original-inside-signature",
		"fail/xsw3/evil-copy-same-id-inserted-before-body",
		"fail/xsw5/signature-moved-to-evil-root-original-after-it",
		"fail/xsw8/original-in-ds-object-evil-root-keeps-signature",
		"fail/xsw/evil-value-smuggled-in-keyinfo",
		"fail/signature-relocated-into-child",
		"fail/two-references",
		"fail/reference-empty-uri",
		"fail/digest-sha1",
		"fail/keyinfo-attacker-cert-same-subject",
		"fail/keyinfo-trusted-cert-signed-by-other-key",
		"fail/caseid-changed-after-signing",
		"fail/ecdsa-der-signature-value",
	} {
		f.Add(seedDoc(f, p, name))
	}
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><Manifest xmlns="` + manifestNS + `" ID="m1">&a;</Manifest>`))

	pol := p.policy()
	pol.Intermediates = p.interPool
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Verify(data, pol)
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) || e.Code == "" || e.Code == "internal" {
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			if s := err.Error(); strings.Contains(s, testCPR) || strings.Contains(s, testCPRDash) {
				t.Fatalf("error leaks a CPR: %s", s)
			}
			if v != nil {
				t.Fatal("Verified returned with an error")
			}
			return
		}
		assertSignedContent(t, p, data, v)
	})
}

// seedDoc builds the document of a named verifyCases entry.
func seedDoc(tb testing.TB, p *testPKI, name string) []byte {
	tb.Helper()
	for _, c := range verifyCases() {
		if c.name == name {
			return c.doc(tb, p)
		}
	}
	tb.Fatalf("no case %s", name)
	return nil
}

// assertSignedContent independently recomputes what the one signature
// covers and checks that Verified.Element is exactly that content.
func assertSignedContent(t *testing.T, p *testPKI, data []byte, v *Verified) {
	t.Helper()
	if v == nil || v.Element == nil || v.Certificate == nil {
		t.Fatal("accepted without a Verified result")
	}
	if _, err := v.Certificate.Verify(x509.VerifyOptions{
		Roots: p.rootPool, Intermediates: p.interPool, CurrentTime: p.now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		t.Fatalf("accepted a certificate that does not chain to the test root: %v", err)
	}
	d := etree.NewDocument()
	if err := d.ReadFromBytes(data); err != nil {
		t.Fatalf("accepted a document etree cannot parse: %v", err)
	}
	root := d.Root()
	kids := root.ChildElements()
	sig := kids[len(kids)-1]
	body := root.Copy()
	body.RemoveChildAt(sig.Index())

	canon := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signedBytes, err := canon.Canonicalize(body)
	if err != nil {
		t.Fatal(err)
	}
	gotBytes, err := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("").Canonicalize(v.Element.Copy())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signedBytes, gotBytes) {
		t.Fatalf("Verified.Element is not the signed content:\nsigned:   %s\nreturned: %s", signedBytes, gotBytes)
	}
	var ref *etree.Element
	for _, el := range sig.FindElements(".//*") {
		if el.Tag == "Reference" {
			ref = el
		}
	}
	var dm, dv *etree.Element
	for _, c := range ref.ChildElements() {
		switch c.Tag {
		case "DigestMethod":
			dm = c
		case "DigestValue":
			dv = c
		}
	}
	h, ok := allowedDigestMethods[dm.SelectAttrValue("Algorithm", "")]
	if !ok {
		t.Fatal("accepted a disallowed digest")
	}
	want, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(dv.Text()), ""))
	hh := h.New()
	hh.Write(signedBytes)
	if !bytes.Equal(hh.Sum(nil), want) {
		t.Fatal("accepted content whose digest does not match the signed DigestValue")
	}
}
