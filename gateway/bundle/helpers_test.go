package bundle_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/bundle/example"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

// repoRoot is the repository root, for testdata/pki and examples/.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// fixedNow is the clock of the tests: after every example's creation time,
// within the throw-away test PKI's validity.
var fixedNow = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func newValidator(t testing.TB) *bundle.Validator {
	t.Helper()
	v, err := bundle.NewValidator(bundle.Config{Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signer loads a signer from the committed throw-away test PKI.
func signer(t testing.TB, name string) *xmlsig.Signer {
	t.Helper()
	pki := filepath.Join(repoRoot(t), "testdata", "pki")
	key, chain, err := certs.LoadKeyPair(filepath.Join(pki, name+".crt"), filepath.Join(pki, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmlsig.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func trust(t testing.TB) bundle.Trust {
	t.Helper()
	pool, _, err := certs.LoadPool(filepath.Join(repoRoot(t), "testdata", "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Trust{Roots: pool}
}

func senderOf(p bundle.Purpose) string {
	if spec, _ := bundle.SpecOf(p); spec.Sender == bundle.SentByRegion {
		return "region-1084"
	}
	return "kommune-101"
}

// writeExample writes the fixed example of a purpose into a temp dir, signed
// by its sender unless sign is false.
func writeExample(t testing.TB, p bundle.Purpose, sign bool, mutate ...func(*example.Options)) (string, *bundle.Manifest) {
	t.Helper()
	dir := t.TempDir()
	o := example.Options{Purpose: p}
	for _, f := range mutate {
		f(&o)
	}
	var fn func([]byte) ([]byte, error)
	if sign {
		fn = signer(t, senderOf(p)).Sign
	}
	m, err := example.Write(dir, o, fn)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editXML parses a file, applies f to its root and writes it back unindented.
func editXML(t testing.TB, path string, f func(root *etree.Element)) {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(path); err != nil {
		t.Fatal(err)
	}
	f(doc.Root())
	if err := doc.WriteToFile(path); err != nil {
		t.Fatal(err)
	}
}

// find returns the first descendant with the given local-name path.
func find(root *etree.Element, path string) *etree.Element {
	el := root
	for _, name := range strings.Split(path, "/") {
		var next *etree.Element
		for _, c := range el.ChildElements() {
			if c.Tag == name {
				next = c
				break
			}
		}
		if next == nil {
			return nil
		}
		el = next
	}
	return el
}

func largeOpt(o *example.Options) { o.Large = true }
