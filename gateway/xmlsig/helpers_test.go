package xmlsig

import (
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

var (
	signedOnce sync.Once
	signedBase []byte
)

// signedManifest is manifest("m1", 3) signed by leafRSA (cached).
func signedManifest(tb testing.TB) []byte {
	tb.Helper()
	p := getPKI(tb)
	signedOnce.Do(func() {
		s, err := NewSigner(p.leafRSA.key, []*x509.Certificate{p.leafRSA.cert})
		if err != nil {
			panic(err)
		}
		signedBase, err = s.Sign(manifest(defaultRootID, 3))
		if err != nil {
			panic(err)
		}
	})
	return append([]byte(nil), signedBase...)
}

func parseDoc(tb testing.TB, b []byte) *etree.Document {
	tb.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(b); err != nil {
		tb.Fatalf("parse: %v", err)
	}
	return d
}

func writeDoc(tb testing.TB, d *etree.Document) []byte {
	tb.Helper()
	d.WriteSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	b, err := d.WriteToBytes()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// mutate parses doc, lets f rebuild or change the tree (f returns the new
// root) and serialises the result.
func mutate(tb testing.TB, doc []byte, f func(root *etree.Element) *etree.Element) []byte {
	tb.Helper()
	d := parseDoc(tb, doc)
	nr := f(d.Root())
	if nr != d.Root() {
		d.SetRoot(nr)
	}
	return writeDoc(tb, d)
}

// sigOf returns the root's ds:Signature (its last child element).
func sigOf(root *etree.Element) *etree.Element {
	for _, c := range root.ChildElements() {
		if c.Tag == "Signature" {
			return c
		}
	}
	return nil
}

// withoutSig returns a copy of root without its Signature.
func withoutSig(root *etree.Element) *etree.Element {
	c := root.Copy()
	if s := sigOf(c); s != nil {
		c.RemoveChild(s)
	}
	return c
}

// evilRoot builds <Manifest xmlns=... ID=id> with the attacker's CaseID and
// CPR as the first children (what a naive reader takes), then extra.
func evilRoot(id string, extra ...etree.Token) *etree.Element {
	r := etree.NewElement("Manifest")
	r.CreateAttr("xmlns", manifestNS)
	if id != "" {
		r.CreateAttr("ID", id)
	}
	r.CreateElement("CaseID").SetText(evilCaseID)
	r.CreateElement("Citizen").CreateElement("CPR").SetText(evilCPR)
	for _, t := range extra {
		r.AddChild(t)
	}
	return r
}

// dsChild appends <ds:tag> to parent (parent must be in scope of xmlns:ds).
func dsChild(parent *etree.Element, tag string) *etree.Element {
	e := parent.CreateElement(tag)
	e.Space = "ds"
	return e
}

// setText replaces the text of the first element at path under root.
func setText(root *etree.Element, path, text string) {
	root.FindElement(path).SetText(text)
}

// childText reads a business value from a verified element.
func childText(el *etree.Element, path string) string {
	f := el.FindElement(path)
	if f == nil {
		return "<absent>"
	}
	return f.Text()
}

// goxmldsigAlone validates doc with goxmldsig only, trusting cert by byte
// equality, as a naive integration would.
func goxmldsigAlone(tb testing.TB, doc []byte, cert *x509.Certificate) error {
	tb.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return err
	}
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	ctx.Clock = dsig.NewFakeClockAt(getPKI(tb).now)
	_, err := ctx.Validate(d.Root())
	return err
}

// secrets are strings that must never appear in an error message.
var secrets = []string{testCPR, testCPRDash, evilCPR, origCaseID, evilCaseID, "Sagsbehandler", "Testkommune", "rehabgw test root"}

// assertNoLeak walks err's whole chain and fails if any text in it holds
// document content or a certificate subject.
func assertNoLeak(t testing.TB, err error) {
	t.Helper()
	var walk func(e error)
	walk = func(e error) {
		if e == nil {
			return
		}
		s := e.Error()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("error text leaks %q: %s", sec, s)
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		default:
			walk(errors.Unwrap(e))
		}
	}
	walk(err)
}

// wantCode checks the error's code, its kind and that it leaks nothing.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s", code)
	}
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("code = %s, want %s (err: %v)", got, code, err)
	}
	kind := errs.KindOf(err)
	switch {
	case strings.HasPrefix(code, "sig."):
		if kind != errs.BadSignature {
			t.Errorf("kind = %v, want bad-signature", kind)
		}
	case strings.HasPrefix(code, "xml."):
		if kind != errs.Invalid && kind != errs.TooLarge {
			t.Errorf("kind = %v, want invalid or too-large", kind)
		}
	}
	assertNoLeak(t, err)
}
