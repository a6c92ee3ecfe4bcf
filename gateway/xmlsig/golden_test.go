package xmlsig

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSignGolden pins the exact form of the Signer's output. The signature
// value and the certificate change with every test PKI and are blanked; the
// digest is a function of the fixed input and is kept.
func TestSignGolden(t *testing.T) {
	p := getPKI(t)
	out, err := p.signer(t, p.leafRSA).Sign(manifest(defaultRootID, 2))
	if err != nil {
		t.Fatal(err)
	}
	d := parseDoc(t, out)
	sig := sigOf(d.Root())
	sig.FindElement("./SignatureValue").SetText("[signature value]")
	sig.FindElement("./KeyInfo/X509Data/X509Certificate").SetText("[leaf certificate]")
	got, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "signed-manifest.golden.xml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("signed output differs from %s (run with -update if intended):\n%s", path, got)
	}
}
