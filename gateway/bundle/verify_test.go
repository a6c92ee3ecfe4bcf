package bundle_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/bundle/example"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
	"github.com/rehabgw/rehabgw/internal/testenv"
)

func TestVerifyManifest(t *testing.T) {
	v := newValidator(t)
	otherPKI := t.TempDir()
	if err := certs.GenerateDev(otherPKI, certs.DevOptions{Now: fixedNow, Registry: registry.Default(), Force: true}); err != nil {
		t.Fatal(err)
	}
	otherRoots, _, err := certs.LoadPool(filepath.Join(otherPKI, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	signWith := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			s := signer(t, name)
			p := filepath.Join(dir, bundle.ManifestFile)
			out, err := s.Sign(readFile(t, p))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(p, out, 0o644)
		}
	}
	cases := []struct {
		name    string
		purpose bundle.Purpose
		signed  bool
		mutate  func(t *testing.T, dir string)
		trust   *bundle.Trust
		now     time.Time
		want    string
		kind    errs.Kind
	}{
		{name: "ok/forberedelse", purpose: bundle.Forberedelse, signed: true},
		{name: "ok/indstilling", purpose: bundle.Indstilling, signed: true},
		{name: "ok/henvisning", purpose: bundle.Henvisning, signed: true},
		{name: "ok/sundhedskoordinator-udtalelse", purpose: bundle.SKUdtalelse, signed: true},
		{name: "ok/klinisk-funktion-attest", purpose: bundle.KlinikAttest, signed: true},
		{name: "fail/unsigned", purpose: bundle.Forberedelse, want: "sig.missing", kind: errs.BadSignature},
		{name: "fail/signed-by-another-municipality", purpose: bundle.Forberedelse, mutate: signWith("kommune-751"), want: "sig.identity_mismatch", kind: errs.BadSignature},
		{name: "fail/signed-by-the-region-for-the-municipality", purpose: bundle.Indstilling, mutate: signWith("region-1084"), want: "sig.identity_mismatch", kind: errs.BadSignature},
		{name: "fail/signed-by-the-operator", purpose: bundle.Henvisning, mutate: signWith("operator"), want: "sig.identity_mismatch", kind: errs.BadSignature},
		{name: "fail/case-changed-after-signing", purpose: bundle.Forberedelse, signed: true, mutate: func(t *testing.T, dir string) {
			p := filepath.Join(dir, bundle.ManifestFile)
			b := readFile(t, p)
			os.WriteFile(p, bytes.Replace(b, []byte("KK-2026-004417"), []byte("KK-2026-004418"), 1), 0o644)
		}, want: "sig.invalid", kind: errs.BadSignature},
		{name: "fail/citizen-changed-after-signing", purpose: bundle.Indstilling, signed: true, mutate: func(t *testing.T, dir string) {
			p := filepath.Join(dir, bundle.ManifestFile)
			b := readFile(t, p)
			os.WriteFile(p, bytes.Replace(b, []byte("<CPR>1408812346</CPR>"), []byte("<CPR>0202024002</CPR>"), 1), 0o644)
		}, want: "sig.invalid", kind: errs.BadSignature},
		{name: "fail/another-ca", purpose: bundle.Forberedelse, signed: true, trust: &bundle.Trust{Roots: otherRoots}, want: "sig.untrusted", kind: errs.BadSignature},
		{name: "fail/certificate-expired", purpose: bundle.Forberedelse, signed: true, now: time.Date(2047, 1, 1, 0, 0, 0, 0, time.UTC), want: "sig.expired", kind: errs.BadSignature},
		{name: "fail/signed-but-schema-invalid", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			editXML(t, filepath.Join(dir, bundle.ManifestFile), func(r *etree.Element) { find(r, "Purpose").SetText("ukendt") })
			signWith("kommune-101")(t, dir)
		}, want: "xsd.invalid", kind: errs.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, m := writeExample(t, tc.purpose, tc.signed)
			if tc.mutate != nil {
				tc.mutate(t, dir)
			}
			tr := trust(t)
			if tc.trust != nil {
				tr = *tc.trust
			}
			vv := v
			if !tc.now.IsZero() {
				var err error
				if vv, err = bundle.NewValidator(bundle.Config{Now: func() time.Time { return tc.now }}); err != nil {
					t.Fatal(err)
				}
			}
			got, ver, err := vv.VerifyManifest(readFile(t, filepath.Join(dir, bundle.ManifestFile)), tr)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				if got.BundleID != m.BundleID || got.Citizen.CPR != m.Citizen.CPR || ver.Certificate == nil {
					t.Fatalf("verified manifest differs from what was signed")
				}
				return
			}
			if errs.CodeOf(err) != tc.want || errs.KindOf(err) != tc.kind {
				t.Fatalf("want %s (%s), got %s (%s): %v", tc.want, tc.kind, errs.CodeOf(err), errs.KindOf(err), err)
			}
			assertNoCPR(t, err, m.Citizen.CPR)
			assertNoCPR(t, err, "0202024002")
		})
	}
}

func TestAcceptance(t *testing.T) {
	v := newValidator(t)
	dir, m := writeExample(t, bundle.Forberedelse, true)
	signed := readFile(t, filepath.Join(dir, bundle.ManifestFile))
	gm, ver, err := v.VerifyManifest(signed, trust(t))
	if err != nil {
		t.Fatal(err)
	}
	gw := signer(t, "gateway")
	gwID, err := certs.IdentityOf(gw.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	received := fixedNow.Add(-time.Minute)
	a, err := bundle.NewAcceptance(signed, gm, ver.Certificate, gwID.String(), received)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := bundle.Countersign(gw, a)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ok/verifies-both-signatures", func(t *testing.T) {
		got, gotM, err := v.VerifyAcceptance(doc, trust(t), trust(t))
		if err != nil {
			t.Fatal(err)
		}
		if got.BundleID != m.BundleID || !got.Received.Equal(received) || gotM.CaseID != m.CaseID || len(got.Parts) != len(m.Parts) {
			t.Fatalf("acceptance content wrong: %+v", got)
		}
		if !bytes.Equal(got.SignedManifest, signed) {
			t.Fatal("carried manifest differs from the sender's bytes")
		}
	})
	t.Run("ok/xmlsec1-verifies-the-countersignature", func(t *testing.T) {
		xmlsec := testenv.RequireTool(t, "xmlsec1")
		p := filepath.Join(t.TempDir(), "acceptance.xml")
		os.WriteFile(p, doc, 0o644)
		out, err := exec.Command(xmlsec, "--verify", "--enabled-key-data", "x509",
			"--trusted-pem", filepath.Join(repoRoot(t), "testdata", "pki", "ca.crt"),
			"--id-attr:ID", bundle.AcceptanceNS+":Acceptance", p).CombinedOutput()
		if err != nil {
			t.Fatalf("xmlsec1 refused the gateway's countersignature: %v\n%s", err, out)
		}
	})
	t.Run("fail/countersigned-by-a-municipality", func(t *testing.T) {
		k := signer(t, "kommune-101")
		d2, _ := bundle.Countersign(k, a)
		if _, _, err := v.VerifyAcceptance(d2, trust(t), trust(t)); errs.CodeOf(err) != "sig.identity_mismatch" {
			t.Fatalf("want sig.identity_mismatch, got %v", err)
		}
	})
	t.Run("fail/part-digest-differs", func(t *testing.T) {
		b := *a
		b.Parts = append([]bundle.PartDigest(nil), a.Parts...)
		b.Parts[0].SHA256 = "0000000000000000000000000000000000000000000000000000000000000000"
		d2, _ := bundle.Countersign(gw, &b)
		if _, _, err := v.VerifyAcceptance(d2, trust(t), trust(t)); errs.CodeOf(err) != "acceptance.mismatch" {
			t.Fatalf("want acceptance.mismatch, got %v", err)
		}
	})
	t.Run("fail/carried-manifest-swapped", func(t *testing.T) {
		other, _ := writeExample(t, bundle.Indstilling, true)
		b := *a
		b.SignedManifest = readFile(t, filepath.Join(other, bundle.ManifestFile))
		d2, _ := bundle.Countersign(gw, &b)
		if _, _, err := v.VerifyAcceptance(d2, trust(t), trust(t)); errs.CodeOf(err) != "acceptance.mismatch" {
			t.Fatalf("want acceptance.mismatch, got %v", err)
		}
	})
	t.Run("fail/tampered-after-countersigning", func(t *testing.T) {
		d2 := bytes.Replace(doc, []byte(received.UTC().Format("2006-01-02")), []byte("2020-01-01"), 1)
		if _, _, err := v.VerifyAcceptance(d2, trust(t), trust(t)); errs.KindOf(err) != errs.BadSignature {
			t.Fatalf("want a bad signature, got %v", err)
		}
	})
}

var update = flag.Bool("update", false, "regenerate examples/ (same as make examples)")

// TestCommittedExamples proves that examples/ holds exactly what the
// generator makes (RSA PKCS#1 v1.5 signatures are deterministic), and that
// every example verifies.
func TestCommittedExamples(t *testing.T) {
	v := newValidator(t)
	for _, p := range bundle.Purposes() {
		t.Run("ok/"+string(p), func(t *testing.T) {
			committed := filepath.Join(repoRoot(t), "examples", string(p))
			if *update {
				os.RemoveAll(committed)
				if _, err := example.Write(committed, example.Options{Purpose: p}, signer(t, senderOf(p)).Sign); err != nil {
					t.Fatal(err)
				}
			}
			fresh, m := writeExample(t, p, true)
			names := append([]string{bundle.ManifestFile}, partIDs(m)...)
			entries, err := os.ReadDir(committed)
			if err != nil {
				t.Fatalf("examples/%s missing (run make examples): %v", p, err)
			}
			if len(entries) != len(names) {
				t.Fatalf("examples/%s has %d files, the generator makes %d (run make examples)", p, len(entries), len(names))
			}
			for _, n := range names {
				if !bytes.Equal(readFile(t, filepath.Join(committed, n)), readFile(t, filepath.Join(fresh, n))) {
					t.Fatalf("examples/%s/%s differs from the generator's output (run make examples)", p, n)
				}
			}
			got, _, err := v.VerifyManifest(readFile(t, filepath.Join(committed, bundle.ManifestFile)), trust(t))
			if err != nil {
				t.Fatal(err)
			}
			d, _ := bundle.OpenDir(committed)
			defer d.Close()
			if err := v.ValidateParts(got, d.Open); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func partIDs(m *bundle.Manifest) []string {
	var out []string
	for _, p := range m.Parts {
		out = append(out, p.ID)
	}
	return out
}

// shortLivedSigner issues a kommune-101 certificate from the throw-away test
// CA that is valid only in [from, to].
func shortLivedSigner(t *testing.T, from, to time.Time) *xmlsig.Signer {
	t.Helper()
	pki := filepath.Join(repoRoot(t), "testdata", "pki")
	caKey, caChain, err := certs.LoadKeyPair(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "Københavns Kommune", Organization: []string{"DEVELOPMENT ONLY"}, SerialNumber: "CVR:64942212-UID:short-lived"},
		NotBefore:    from, NotAfter: to,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caChain[0], &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	s, err := xmlsig.NewSigner(key, []*x509.Certificate{leaf})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptanceOutlivesTheSendersCertificate(t *testing.T) {
	received := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s := shortLivedSigner(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	if _, err := example.Write(dir, example.Options{Purpose: bundle.Forberedelse}, s.Sign); err != nil {
		t.Fatal(err)
	}
	signed := readFile(t, filepath.Join(dir, bundle.ManifestFile))
	then, err := bundle.NewValidator(bundle.Config{Now: func() time.Time { return received }})
	if err != nil {
		t.Fatal(err)
	}
	m, ver, err := then.VerifyManifest(signed, trust(t))
	if err != nil {
		t.Fatal(err)
	}
	gw := signer(t, "gateway")
	gid, _ := certs.IdentityOf(gw.Certificate())
	a, _ := bundle.NewAcceptance(signed, m, ver.Certificate, gid.String(), received)
	doc, err := bundle.Countersign(gw, a)
	if err != nil {
		t.Fatal(err)
	}
	later := newValidator(t) // 2026-11-26: the sender's certificate has expired
	if _, _, err := later.VerifyManifest(signed, trust(t)); errs.CodeOf(err) != "sig.expired" {
		t.Fatalf("the manifest alone should no longer verify today, got %v", err)
	}
	if _, _, err := later.VerifyAcceptance(doc, trust(t), trust(t)); err != nil {
		t.Fatalf("an accepted bundle must stay verifiable after the sender's certificate expires: %v", err)
	}
}

func TestAcceptanceOfAManifestAtTheSizeLimit(t *testing.T) {
	v := newValidator(t)
	dir, _ := writeExample(t, bundle.Forberedelse, false)
	p := filepath.Join(dir, bundle.ManifestFile)
	unsigned := readFile(t, p)
	// Pad with whitespace (allowed, and kept by the signature) to just under
	// the manifest limit, leaving room for the signature.
	pad := int(xmlsafe.Manifest.MaxBytes) - len(unsigned) - 4096
	padded := bytes.Replace(unsigned, []byte("</Manifest>"), append(bytes.Repeat([]byte(" "), pad), []byte("</Manifest>")...), 1)
	signed, err := signer(t, "kommune-101").Sign(padded)
	if err != nil {
		t.Fatal(err)
	}
	m, ver, err := v.VerifyManifest(signed, trust(t))
	if err != nil {
		t.Fatal(err)
	}
	gw := signer(t, "gateway")
	gid, _ := certs.IdentityOf(gw.Certificate())
	a, _ := bundle.NewAcceptance(signed, m, ver.Certificate, gid.String(), fixedNow)
	doc, err := bundle.Countersign(gw, a)
	if err != nil {
		t.Fatalf("a %d-byte manifest could not be countersigned: %v", len(signed), err)
	}
	if _, _, err := v.VerifyAcceptance(doc, trust(t), trust(t)); err != nil {
		t.Fatal(err)
	}
}
