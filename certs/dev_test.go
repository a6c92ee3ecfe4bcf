package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/gateway/registry"
)

var writeTestPKI = flag.Bool("write-testpki", false,
	"write the throw-away test PKI to ../testdata/pki (refuses to overwrite; delete the directory first to regenerate)")

// testPKIDir is the committed test PKI, relative to this package.
const testPKIDir = "../testdata/pki"

// TestWriteTestPKI regenerates testdata/pki when asked:
//
//	go test ./certs -run TestWriteTestPKI -write-testpki
func TestWriteTestPKI(t *testing.T) {
	if !*writeTestPKI {
		t.Skip("run with -write-testpki to (re)create testdata/pki")
	}
	if err := WriteTestPKI(testPKIDir, false); err != nil {
		t.Fatal(err)
	}
}

var devNow = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func TestGenerateDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if err := GenerateDev(dir, DevOptions{Now: devNow}); err != nil {
		t.Fatal(err)
	}
	checkDevPKI(t, dir, devNow, devNow.Add(DefaultDevValidity), true)
}

// TestCommittedTestPKI checks the committed testdata/pki with the same rules
// as a fresh one, at a time inside its validity.
func TestCommittedTestPKI(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testPKIDir, DevCACert)); err != nil {
		t.Fatalf("committed test PKI missing (%v); create it with -write-testpki", err)
	}
	checkDevPKI(t, testPKIDir, testPKITime, testPKITime.Add(TestPKIValidity), false)
	if got := testPKITime.Add(TestPKIValidity); !got.Equal(time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("test PKI expires %v, want 2046-01-01", got)
	}
	readme, err := os.ReadFile(filepath.Join(testPKIDir, "README.md"))
	if err != nil || !bytes.Contains(readme, []byte("throw-away")) || !bytes.Contains(readme, []byte("never trust")) {
		t.Errorf("README.md missing or without the warning: %v", err)
	}
}

func checkDevPKI(t *testing.T, dir string, now, notAfter time.Time, checkModes bool) {
	t.Helper()
	reg := registry.Default()

	if checkModes {
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v, want 0700", dir, st.Mode().Perm())
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("temporary file left behind: %s", e.Name())
			}
		}
	}
	mode := func(name string, want os.FileMode) {
		if !checkModes {
			return // git does not keep modes other than the executable bit
		}
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			return
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}

	mode(DevCACert, 0o644)
	mode(DevCAKey, 0o600)
	roots, cas, err := LoadPool(filepath.Join(dir, DevCACert))
	if err != nil {
		t.Fatal(err)
	}
	if len(cas) != 1 {
		t.Fatalf("ca.crt holds %d certificates", len(cas))
	}
	ca := cas[0]
	caKey, caChain, err := LoadKeyPair(filepath.Join(dir, DevCACert), filepath.Join(dir, DevCAKey))
	if err != nil {
		t.Fatal(err)
	}
	if ek, ok := caKey.(*ecdsa.PrivateKey); !ok || ek.Curve != elliptic.P384() {
		t.Errorf("CA key is %T, want ECDSA P-384", caKey)
	}
	if !caChain[0].Equal(ca) {
		t.Error("CA key pair does not load the CA")
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA %v MaxPathLen %d zero %v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA key usage %v", ca.KeyUsage)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	checkTimes(t, "ca", ca, now, notAfter)
	if !slices.Equal(ca.Subject.Organization, []string{DevOrganization}) {
		t.Errorf("CA subject O = %v", ca.Subject.Organization)
	}

	serials := map[string]string{ca.SerialNumber.String(): "ca"}
	for _, l := range DevLeaves() {
		t.Run(l.Name, func(t *testing.T) {
			crt, key := filepath.Join(dir, l.Name+".crt"), filepath.Join(dir, l.Name+".key")
			mode(l.Name+".crt", 0o644)
			mode(l.Name+".key", 0o600)
			signer, chain, err := LoadKeyPair(crt, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 1 {
				t.Fatalf("chain of %d", len(chain))
			}
			leaf := chain[0]
			rk, ok := signer.(*rsa.PrivateKey)
			if !ok || rk.N.BitLen() != 2048 {
				t.Fatalf("leaf key %T, want RSA 2048", signer)
			}
			// RSA PKCS#1 v1.5 signatures are deterministic; golden files rely on it.
			d := sha256.Sum256([]byte("rehabgw"))
			s1, err1 := signer.Sign(rand.Reader, d[:], crypto.SHA256)
			s2, err2 := signer.Sign(rand.Reader, d[:], crypto.SHA256)
			if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
				t.Errorf("PKCS#1 v1.5 signatures differ (%v, %v)", err1, err2)
			}

			// Chains to ca.crt with client auth; server auth only for the gateway.
			verify := func(usage x509.ExtKeyUsage) error {
				_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
				return err
			}
			if err := verify(x509.ExtKeyUsageClientAuth); err != nil {
				t.Errorf("client auth: %v", err)
			}
			if err := verify(x509.ExtKeyUsageServerAuth); (err == nil) != l.Server {
				t.Errorf("server auth verification: %v (server=%v)", err, l.Server)
			}
			wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			wantKU := x509.KeyUsageDigitalSignature
			if l.Server {
				wantEKU = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
				wantKU |= x509.KeyUsageKeyEncipherment
				for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
					if err := leaf.VerifyHostname(h); err != nil {
						t.Errorf("SAN %s: %v", h, err)
					}
				}
				if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 2 {
					t.Errorf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
				}
			} else if len(leaf.DNSNames)+len(leaf.IPAddresses) != 0 {
				t.Errorf("client certificate has SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
			}
			if !slices.Equal(leaf.ExtKeyUsage, wantEKU) || leaf.KeyUsage != wantKU {
				t.Errorf("EKU %v KU %v; want %v %v", leaf.ExtKeyUsage, leaf.KeyUsage, wantEKU, wantKU)
			}
			if leaf.IsCA {
				t.Error("leaf is a CA")
			}
			checkTimes(t, l.Name, leaf, now, notAfter)
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v", leaf.SerialNumber)
			}
			if prev, dup := serials[leaf.SerialNumber.String()]; dup {
				t.Errorf("serial shared with %s", prev)
			}
			serials[leaf.SerialNumber.String()] = l.Name

			// Identity -> registry -> the organisation named in the subject.
			id, err := IdentityOf(leaf)
			if err != nil {
				t.Fatal(err)
			}
			if id.UID != l.UID {
				t.Errorf("UID %s, want %s", id.UID, l.UID)
			}
			org, ok := reg.ByCVR(id.CVR)
			if !ok || org.ID != l.OrgID {
				t.Fatalf("CVR %s maps to %v, want %s", id.CVR, org, l.OrgID)
			}
			if leaf.Subject.CommonName != org.Name || !slices.Equal(leaf.Subject.Organization, []string{DevOrganization}) {
				t.Errorf("subject %v", leaf.Subject)
			}
		})
	}
	// Spot checks of the mapping the brief names.
	for name, want := range map[string]string{"kommune-101": "Københavns Kommune", "kommune-751": "Aarhus Kommune", "region-1084": "Region Hovedstaden", "region-1082": "Region Midtjylland"} {
		_, chain, err := LoadKeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if chain[0].Subject.CommonName != want {
			t.Errorf("%s CN = %q, want %q", name, chain[0].Subject.CommonName, want)
		}
	}
}

func checkTimes(t *testing.T, name string, c *x509.Certificate, now, notAfter time.Time) {
	t.Helper()
	if !c.NotBefore.Equal(now.Add(-time.Hour)) || !c.NotAfter.Equal(notAfter) {
		t.Errorf("%s valid %v..%v, want %v..%v", name, c.NotBefore, c.NotAfter, now.Add(-time.Hour), notAfter)
	}
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestGenerateDevRefusesToOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	opts := DevOptions{Now: devNow, Validity: 24 * time.Hour}
	if err := GenerateDev(dir, opts); err != nil {
		t.Fatal(err)
	}
	before := readAll(t, dir)
	if len(before) != 2+2*len(DevLeaves()) {
		t.Fatalf("%d files written", len(before))
	}

	err := GenerateDev(dir, opts)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second run: %v", err)
	}
	after := readAll(t, dir)
	for name, b := range before {
		if !bytes.Equal(after[name], b) {
			t.Errorf("%s changed although GenerateDev refused", name)
		}
	}

	opts.Force = true
	if err := GenerateDev(dir, opts); err != nil {
		t.Fatalf("forced run: %v", err)
	}
	forced := readAll(t, dir)
	if len(forced) != len(before) {
		t.Errorf("forced run left %d files, want %d", len(forced), len(before))
	}
	if bytes.Equal(forced[DevCACert], before[DevCACert]) || bytes.Equal(forced["gateway.key"], before["gateway.key"]) {
		t.Error("forced run did not replace the files")
	}
	checkDevPKI(t, dir, devNow, devNow.Add(24*time.Hour), true)
}

func TestGenerateDevRefusesIfAnyFileExists(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "operator.key"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := GenerateDev(dir, DevOptions{Now: devNow})
	if err == nil || !strings.Contains(err.Error(), "operator.key") {
		t.Fatalf("err = %v", err)
	}
	if files := readAll(t, dir); len(files) != 1 || string(files["operator.key"]) != "mine" {
		t.Fatalf("GenerateDev wrote %d files after refusing", len(files))
	}
}

func TestGenerateDevNeedsRegistryOrganisations(t *testing.T) {
	const small = `regions:
  - code: "1084"
    name: Region Hovedstaden
    cvr: "29190623"
    functions:
      sundhedskoordinator: {name: SK}
      klinisk-funktion: {name: KF}
kommuner:
  - {code: "101", name: Københavns Kommune, cvr: "64942212", region: region-1084}
operator: {name: Op, cvr: "12345674"}
`
	reg, err := registry.Load(strings.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	err = GenerateDev(dir, DevOptions{Now: devNow, Registry: reg})
	if err == nil || !strings.Contains(err.Error(), "kommune-751") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory created although generation failed: %v", err)
	}
}

func TestWriteTestPKIRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteTestPKI(dir, false); err == nil || !strings.Contains(err.Error(), "README.md") {
		t.Fatalf("err = %v", err)
	}
}
