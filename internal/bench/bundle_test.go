package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/internal/e2e"
)

// TestTypicalBundle checks that the benchmarks' typical bundle is what they
// claim: valid as the gateway validates it (signature, schema of every
// document, rules, digests), about 100 KB of XML, a 1 MiB attachment.
func TestTypicalBundle(t *testing.T) {
	pki := e2e.NewPKI(t)
	bd, err := Typical(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signed, _, err := bd.Sign(Signer(t, pki, "kommune-101").Sign)
	if err != nil {
		t.Fatal(err)
	}
	pool, _, err := certs.LoadPool(pki.CA())
	if err != nil {
		t.Fatal(err)
	}
	v, err := bundle.NewValidator(bundle.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := v.VerifyManifest(signed, bundle.Trust{Roots: pool})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateParts(m, bd.Open); err != nil {
		t.Fatal(err)
	}
	xml := bd.XMLBytes(signed)
	t.Logf("XML: %d bytes (manifest %d); parts: %d bytes", xml, len(signed), bd.PartBytes())
	for _, p := range m.Parts {
		t.Logf("  %-22s %-18s %8d", p.ID, p.Kind, p.Size)
	}
	if xml < 90_000 || xml > 110_000 {
		t.Errorf("the three XML documents hold %d bytes, want about 100 KB", xml)
	}
	if p, ok := m.Part(BilagID); !ok || p.Size < TypicalAttachment || p.Size > TypicalAttachment+4096 {
		t.Errorf("attachment %+v, want 1 MiB of image data", p)
	}
	// Fresh IDs.
	again, _, err := bd.Sign(Signer(t, pki, "kommune-101").Sign)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, signed) {
		t.Error("two signed manifests are identical")
	}
}

// TestWritePDF checks the generated PDF's size and its xref offsets.
func TestWritePDF(t *testing.T) {
	var buf bytes.Buffer
	n, err := WritePDF(&buf, 64<<10, "t")
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if int64(len(b)) != n || !bytes.HasPrefix(b, []byte("%PDF-1.4\n")) || !bytes.HasSuffix(b, []byte("%%EOF\n")) {
		t.Fatalf("size %d (reported %d), head %q", len(b), n, b[:9])
	}
	sx := bytes.LastIndex(b, []byte("startxref\n"))
	end := bytes.IndexByte(b[sx+10:], '\n')
	off, err := strconv.Atoi(string(b[sx+10 : sx+10+end]))
	if err != nil || !bytes.HasPrefix(b[off:], []byte("xref\n")) {
		t.Fatalf("startxref %d does not point at the xref table", off)
	}
	// Every object offset points at "N 0 obj".
	table := b[off:]
	lines := bytes.Split(table, []byte("\n"))
	for i, l := range lines[3:] {
		if !bytes.HasSuffix(l, []byte(" n ")) {
			break
		}
		o, _ := strconv.Atoi(string(l[:10]))
		if want := fmt.Sprintf("%d 0 obj\n", i+1); !bytes.HasPrefix(b[o:], []byte(want)) {
			t.Errorf("object %d: offset %d points at %q", i+1, o, b[o:min(o+10, len(b))])
		}
	}
}

// TestPush pushes the typical bundle once over each transport to an
// in-process embedded-defaults gateway: the benchmarks' path works.
func TestPush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	pki := e2e.NewPKI(t)
	sign := Signer(t, pki, "kommune-101").Sign
	bd, err := Typical(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	addr := InProcess(t, e2e.Config(t, pki))
	for _, tr := range []string{"tcp", "h3"} {
		cl := Client(t, pki, addr, "kommune-101", tr)
		m, _, err := bd.Sign(sign)
		if err != nil {
			t.Fatal(err)
		}
		if err := Push(context.Background(), cl, bd, m); err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		// An identical resend is not a new bundle: Push refuses to count it.
		if err := Push(context.Background(), cl, bd, m); err == nil {
			t.Fatalf("%s: a resend counted as a new push", tr)
		}
	}
}
