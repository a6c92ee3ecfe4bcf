package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/config"
	"github.com/rehabgw/rehabgw/gateway/service"
)

// startGateway runs an embedded-defaults gateway in-process on a free port
// and returns its address and PKI directory.
func startGateway(t *testing.T) (addr, pki string) {
	t.Helper()
	data := t.TempDir()
	cfg := config.EmbeddedDefaults(data, "127.0.0.1:0")
	if _, err := service.PrepareEmbedded(cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	g, err := service.Open(context.Background(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Close(ctx)
	})
	return g.Addr(), cfg.DevPKIDir()
}

// as returns the connection flags of one organisation of the dev PKI.
func as(addr, pki, who, transport string) []string {
	return []string{"--gateway", "https://" + addr, "--cert", filepath.Join(pki, who+".crt"), "--key", filepath.Join(pki, who+".key"),
		"--ca", filepath.Join(pki, "ca.crt"), "--transport", transport}
}

func must(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errOut := gwctl(t, args...)
	if code != want {
		t.Fatalf("gwctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args[:1], " "), code, want, out, errOut)
	}
	return out + errOut
}

func TestOnlineFlow(t *testing.T) {
	addr, pki := startGateway(t)
	for _, tr := range []string{"tcp", "h3"} {
		t.Run(tr, func(t *testing.T) {
			kbh := as(addr, pki, "kommune-101", tr)
			region := as(addr, pki, "region-1084", tr)
			tmp := t.TempDir()
			b1 := filepath.Join(tmp, "b1")
			must(t, 0, "example", "--purpose", "forberedelse", "--out", b1, "--cert", filepath.Join(pki, "kommune-101.crt"), "--key", filepath.Join(pki, "kommune-101.key"))
			id := bundleID(t, b1)
			cpr := readManifestCPR(t, b1)

			// Push: 0, receipt on stdout; identical resend: 0 and the same receipt.
			_, receipt1, _ := gwctl(t, append([]string{"push"}, append(kbh, b1)...)...)
			if !strings.Contains(receipt1, "<Acceptance") || !strings.Contains(receipt1, id) {
				t.Fatalf("no receipt: %.200s", receipt1)
			}
			rec := filepath.Join(tmp, "receipt.xml")
			must(t, 0, append([]string{"push", "--receipt", rec}, append(kbh, b1)...)...)
			if got, _ := os.ReadFile(rec); !bytes.Equal(got, []byte(receipt1)) {
				t.Fatal("the identical resend got another receipt")
			}

			// Same bundle ID, other content: refused with 409 (exit 1).
			b1x := filepath.Join(tmp, "b1x")
			copyDir(t, b1, b1x)
			m, _ := os.ReadFile(filepath.Join(b1x, "manifest.xml"))
			os.WriteFile(filepath.Join(b1x, "manifest.xml"), bytes.Replace(m, []byte("<Unit>"), []byte("<Unit>Afd. 2, "), 1), 0o644)
			must(t, 0, "sign", "--resign", "--cert", filepath.Join(pki, "kommune-101.crt"), "--key", filepath.Join(pki, "kommune-101.key"), b1x)
			if out := must(t, 1, append([]string{"push"}, append(kbh, b1x)...)...); !strings.Contains(out, "bundle.conflict") {
				t.Fatalf("want bundle.conflict: %s", out)
			}

			// Another municipality cannot send as København.
			if out := must(t, 1, append([]string{"push"}, append(as(addr, pki, "kommune-751", tr), b1)...)...); !strings.Contains(out, "auth.sender_mismatch") {
				t.Fatalf("want auth.sender_mismatch: %s", out)
			}

			// The region sees it in its inbox; another region does not.
			var inbox []map[string]any
			out := must(t, 0, append([]string{"inbox", "--json"}, region...)...)
			json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &inbox)
			found := false
			for _, d := range inbox {
				if d["bundle_id"] == id {
					found = true
					for _, k := range []string{"case_id", "purpose", "from", "received"} {
						if d[k] == nil || d[k] == "" {
							t.Errorf("inbox entry lacks %s", k)
						}
					}
				}
			}
			if !found {
				t.Fatalf("bundle %s not in the region's inbox: %s", id, out)
			}
			if out := must(t, 0, append([]string{"inbox", "--json"}, as(addr, pki, "region-1082", tr)...)...); strings.Contains(out, id) {
				t.Fatal("another region sees the bundle")
			}

			// Fetch verifies both signatures and every digest; the result
			// verifies offline too. Another region is refused.
			got := filepath.Join(tmp, "got")
			must(t, 0, append([]string{"fetch", id, "--out", got}, region...)...)
			must(t, 0, "verify", "--trust", filepath.Join(pki, "ca.crt"), got)
			for _, f := range []string{"forberedende-del.xml", "resume.xml", "laegeattest-le265.pdf"} {
				a, _ := os.ReadFile(filepath.Join(b1, f))
				b, _ := os.ReadFile(filepath.Join(got, f))
				if !bytes.Equal(a, b) {
					t.Fatalf("%s differs after the round trip", f)
				}
			}
			must(t, 1, append([]string{"fetch", id, "--out", filepath.Join(tmp, "nope")}, as(addr, pki, "region-1082", tr)...)...)
			if _, err := os.Stat(filepath.Join(tmp, "nope")); err == nil {
				t.Fatal("a refused fetch left a directory behind")
			}

			must(t, 0, append([]string{"ack", id}, region...)...)

			// The region answers; the municipality finds the reply in its inbox.
			r1 := filepath.Join(tmp, "r1")
			must(t, 0, "example", "--purpose", "sundhedskoordinator-udtalelse", "--in-reply-to", id, "--out", r1,
				"--cert", filepath.Join(pki, "region-1084.crt"), "--key", filepath.Join(pki, "region-1084.key"))
			must(t, 0, append([]string{"push"}, append(region, r1)...)...)
			if out := must(t, 0, append([]string{"inbox", "--json"}, kbh...)...); !strings.Contains(out, bundleID(t, r1)) {
				t.Fatalf("reply not in the municipality's inbox: %s", out)
			}

			// Operators: the citizen's audit trail and the whole chain.
			op := as(addr, pki, "operator", tr)
			out = must(t, 0, append([]string{"audit", "--cpr", cpr}, op...)...)
			for _, action := range []string{`"push"`, `"read-manifest"`, `"read-part"`, `"ack"`, `"denied"`} {
				if !strings.Contains(out, action) {
					t.Errorf("audit export lacks %s", action)
				}
			}
			must(t, 0, append([]string{"audit", "verify"}, op...)...)
			must(t, 1, append([]string{"audit", "--cpr", cpr}, kbh...)...)
		})
	}
}

func TestPushExitCodes(t *testing.T) {
	addr, pki := startGateway(t)
	kbh := as(addr, pki, "kommune-101", "tcp")
	b := filepath.Join(t.TempDir(), "b")
	must(t, 0, "example", "--purpose", "henvisning", "--out", b, "--cert", filepath.Join(pki, "kommune-101.crt"), "--key", filepath.Join(pki, "kommune-101.key"))

	// A part changed after signing: refused (exit 1), and nothing arrives.
	bad := filepath.Join(t.TempDir(), "bad")
	copyDir(t, b, bad)
	appendFile(t, filepath.Join(bad, "henvisning.xml"), " ")
	must(t, 1, append([]string{"push"}, append(kbh, bad)...)...)
	if out := must(t, 0, append([]string{"inbox", "--json"}, as(addr, pki, "region-1084", "tcp")...)...); strings.Contains(out, bundleID(t, b)) {
		t.Fatal("a refused bundle is visible")
	}

	// Unreachable gateway: exit 3.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	must(t, 3, append([]string{"push"}, append(as(closed, pki, "kommune-101", "tcp"), b)...)...)

	// Missing connection flags: usage.
	must(t, 2, "push", b)
	must(t, 0, append([]string{"push"}, append(kbh, b)...)...)
}

// TestCorruptedObjectIsNeverServed flips one byte of a stored part in the
// embedded S3 server's files: the gateway re-checks the SHA-256 on the way
// out and aborts the response, so the recipient never gets a complete
// download of wrong bytes, and gwctl fetch leaves nothing behind.
func TestCorruptedObjectIsNeverServed(t *testing.T) {
	data := t.TempDir()
	cfg := config.EmbeddedDefaults(data, "127.0.0.1:0")
	if _, err := service.PrepareEmbedded(cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	g, err := service.Open(context.Background(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	addr, pki := g.Addr(), cfg.DevPKIDir()
	b := filepath.Join(t.TempDir(), "b")
	// A part far larger than any transport buffer, so that bytes really
	// leave the server before the digest can be checked.
	must(t, 0, "example", "--large", "--purpose", "henvisning", "--out", b, "--cert", filepath.Join(pki, "kommune-101.crt"), "--key", filepath.Join(pki, "kommune-101.key"))
	must(t, 0, append([]string{"push"}, append(as(addr, pki, "kommune-101", "tcp"), b)...)...)
	pdf, _ := os.ReadFile(filepath.Join(b, "bilag-scanning.pdf"))

	corrupted := 0
	filepath.WalkDir(filepath.Join(data, "blobs", "buckets"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if st, _ := d.Info(); st.Size() != int64(len(pdf)) {
			return nil
		}
		if got, _ := os.ReadFile(p); bytes.Equal(got, pdf) {
			got[len(got)-1000] ^= 0x20
			os.WriteFile(p, got, 0o600)
			corrupted++
		}
		return nil
	})
	if corrupted != 1 {
		t.Fatalf("found %d stored copies of the PDF to corrupt, want 1", corrupted)
	}
	// On the wire, for any client: the response ends short with an error,
	// never as a complete body of wrong bytes (the gateway holds back the
	// part's last 64 KiB until the digest holds).
	for _, tr := range []string{"tcp", "h3"} {
		cl, err := client.New(client.Config{Gateway: "https://" + addr, CertFile: filepath.Join(pki, "region-1084.crt"),
			KeyFile: filepath.Join(pki, "region-1084.key"), CAFile: filepath.Join(pki, "ca.crt"), Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Get(context.Background(), "/v1/bundles/"+bundleID(t, b)+"/parts/bilag-scanning.pdf")
		if err == nil {
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil || len(got) > len(pdf)-64<<10 {
				t.Fatalf("%s: %d of %d bytes of a corrupted part reached the client (read error %v); at most all but the last 64 KiB may", tr, len(got), len(pdf), rerr)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "got")
	code, _, errOut := gwctl(t, append([]string{"fetch", bundleID(t, b), "--out", out}, as(addr, pki, "region-1084", "tcp")...)...)
	if code == 0 {
		t.Fatal("a corrupted part was fetched as if it were whole")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("fetch left %s behind", out)
	}
	t.Logf("fetch of the corrupted bundle: exit %d: %s", code, strings.TrimSpace(errOut))
}

func bundleID(t *testing.T, dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "manifest.xml"))
	s := string(b)
	i := strings.Index(s, "<BundleID>")
	return s[i+10 : i+46]
}
