package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rehabgw/rehabgw/gateway/registry"
)

// DevOrganization is the subject O of every development certificate.
const DevOrganization = "DEVELOPMENT ONLY"

// DefaultDevValidity is the validity of development certificates when
// DevOptions.Validity is zero (825 days, the old CA/Browser Forum maximum).
const DefaultDevValidity = 825 * 24 * time.Hour

// Development PKI file names in the output directory.
const (
	DevCACert = "ca.crt"
	DevCAKey  = "ca.key"
)

// DevOptions configures GenerateDev.
type DevOptions struct {
	Now      time.Time          // issue time; zero means time.Now(). NotBefore is Now-1h.
	Validity time.Duration      // zero means DefaultDevValidity; NotAfter is Now+Validity
	Registry *registry.Registry // source of names and CVR numbers; nil means registry.Default()
	Force    bool               // overwrite existing files
}

// DevLeaf describes one leaf certificate of the development PKI.
type DevLeaf struct {
	Name   string // file stem: <Name>.crt and <Name>.key
	OrgID  string // registry organisation whose name and CVR the certificate carries
	UID    string // the UID part of the subject serialNumber
	Server bool   // also a TLS server certificate for localhost, 127.0.0.1 and ::1
}

// DevLeaves returns the leaf certificates GenerateDev writes, in order.
func DevLeaves() []DevLeaf {
	return []DevLeaf{
		{Name: "gateway", OrgID: registry.OperatorID, UID: "rehabgw-dev-gateway", Server: true},
		{Name: "kommune-101", OrgID: "kommune-101", UID: "rehabgw-dev-kommune-101"},
		{Name: "kommune-751", OrgID: "kommune-751", UID: "rehabgw-dev-kommune-751"},
		{Name: "region-1084", OrgID: "region-1084", UID: "rehabgw-dev-region-1084"},
		{Name: "region-1082", OrgID: "region-1082", UID: "rehabgw-dev-region-1082"},
		{Name: "operator", OrgID: registry.OperatorID, UID: "rehabgw-dev-operator"},
	}
}

// GenerateDev writes a development PKI into dir, creating it with mode 0700
// if needed: ca.crt and ca.key (the CA key is kept so that more leaves can be
// issued later), and for every DevLeaves entry <name>.crt and <name>.key.
// Keys are written with mode 0600 and certificates 0644, each atomically
// (temporary file in dir, then rename). If any of the files exists already,
// GenerateDev writes nothing and returns an error, unless opts.Force is set.
//
// The CA has an ECDSA P-384 key: certificate signing is fast to generate in
// tests, small, and at 192-bit strength outlives any leaf; it also keeps the
// chain mixed (RSA leaf under an ECDSA CA), which the verifiers must handle
// anyway. Leaves have RSA 2048 keys, because RSA PKCS#1 v1.5 signatures are
// deterministic and golden-file tests of signed XML rely on that, and
// because Danish OCES certificates are RSA.
//
// Leaf subjects: CN is the organisation's name from the registry, O is
// DevOrganization, serialNumber is "CVR:<org CVR>-UID:<leaf UID>". All leaves
// have ExtKeyUsage client auth and KeyUsage DigitalSignature; the gateway
// leaf also has server auth, KeyEncipherment and the SANs localhost,
// 127.0.0.1 and ::1. Serial numbers are random 128-bit integers.
//
// Never use these certificates outside development and tests.
func GenerateDev(dir string, opts DevOptions) error {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	validity := opts.Validity
	if validity == 0 {
		validity = DefaultDevValidity
	}
	if validity < 0 {
		return errors.New("certs: negative validity")
	}
	reg := opts.Registry
	if reg == nil {
		reg = registry.Default()
	}
	notBefore, notAfter := now.Add(-time.Hour), now.Add(validity)

	leaves := DevLeaves()
	names := []string{DevCACert, DevCAKey}
	for _, l := range leaves {
		names = append(names, l.Name+".crt", l.Name+".key")
	}
	if err := checkAbsent(dir, names, opts.Force); err != nil {
		return err
	}

	// Build everything in memory first, so that a failure writes nothing.
	files := map[string][]byte{}
	caKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:   "rehabgw development CA",
			Organization: []string{DevOrganization},
		},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return fmt.Errorf("certs: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("certs: CA certificate: %w", err)
	}
	if files[DevCACert], files[DevCAKey], err = encodePair(caDER, caKey); err != nil {
		return err
	}

	for _, l := range leaves {
		org, ok := reg.ByID(l.OrgID)
		if !ok {
			return fmt.Errorf("certs: %s: organisation %s is not in the registry", l.Name, l.OrgID)
		}
		if org.CVR == "" {
			return fmt.Errorf("certs: %s: organisation %s has no CVR in the registry", l.Name, l.OrgID)
		}
		id := Identity{CVR: org.CVR, UID: l.UID}
		if _, err := ParseIdentity(id.String()); err != nil {
			return fmt.Errorf("certs: %s: %w", l.Name, err)
		}
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return fmt.Errorf("certs: %s key: %w", l.Name, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: randomSerial(),
			Subject: pkix.Name{
				CommonName:   org.Name,
				Organization: []string{DevOrganization},
				SerialNumber: id.String(),
			},
			NotBefore:             notBefore,
			NotAfter:              notAfter,
			KeyUsage:              x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true,
		}
		if l.Server {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
		if err != nil {
			return fmt.Errorf("certs: %s certificate: %w", l.Name, err)
		}
		if files[l.Name+".crt"], files[l.Name+".key"], err = encodePair(der, key); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	for _, name := range names {
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := writeFileAtomic(dir, name, files[name], mode); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// testPKITime is the fixed issue time of the committed test PKI.
var testPKITime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestPKIValidity is the validity of the committed test PKI: 20 years
// (7,305 days, which includes five leap days), so it expires on 1 Jan 2046.
const TestPKIValidity = 7305 * 24 * time.Hour

// TestPKIReadme is the README.md written next to the test PKI.
const TestPKIReadme = `# Throw-away test PKI — never trust these keys

These keys and certificates are **throw-away material for tests and
examples only**. The private keys are public (they are committed to this
repository), so nothing signed with them proves anything. Never add ca.crt to
a trust store outside a test, never deploy any of these files, and never
issue anything with ca.key except more test certificates.

Every subject says ` + "`O=DEVELOPMENT ONLY`" + `. The leaves carry the identities of the
organisations in gateway/registry (Københavns Kommune, Aarhus Kommune, Region
Hovedstaden, Region Midtjylland, and the gateway operator with its fictional
development CVR), issued 2026-01-01T00:00:00Z (NotBefore one hour earlier),
valid for 20 years.

| file | what |
|---|---|
| ca.crt, ca.key | ECDSA P-384 CA (MaxPathLen 0) |
| gateway.crt/.key | RSA 2048, server + client auth, SAN localhost, 127.0.0.1, ::1 |
| kommune-101.crt/.key | Københavns Kommune, client auth |
| kommune-751.crt/.key | Aarhus Kommune, client auth |
| region-1084.crt/.key | Region Hovedstaden, client auth |
| region-1082.crt/.key | Region Midtjylland, client auth |
| operator.crt/.key | gateway operator, client auth |

Regenerate (this changes every key, so golden files made with them must be
updated too):

    rm -r testdata/pki
    go test ./certs -run TestWriteTestPKI -write-testpki

The code is certs.WriteTestPKI.
`

// WriteTestPKI writes the throw-away test PKI committed at testdata/pki:
// GenerateDev with Now 2026-01-01T00:00:00Z, a validity of 20 years and the
// default registry, plus a README.md that says what the files are. Like
// GenerateDev it refuses to overwrite anything unless force is set.
func WriteTestPKI(dir string, force bool) error {
	if err := checkAbsent(dir, []string{"README.md"}, force); err != nil {
		return err
	}
	err := GenerateDev(dir, DevOptions{
		Now:      testPKITime,
		Validity: TestPKIValidity,
		Registry: registry.Default(),
		Force:    force,
	})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(dir, "README.md", []byte(TestPKIReadme), 0o644); err != nil {
		return err
	}
	return syncDir(dir)
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n
		}
	}
}

func encodePair(der []byte, key crypto.Signer) (certPEM, keyPEM []byte, err error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: k})
	return certPEM, keyPEM, nil
}

// checkAbsent refuses if any of names exists in dir, unless force is set.
func checkAbsent(dir string, names []string, force bool) error {
	if force {
		return nil
	}
	var existing []string
	for _, n := range names {
		_, err := os.Lstat(filepath.Join(dir, n))
		switch {
		case err == nil:
			existing = append(existing, n)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("certs: %w", err)
		}
	}
	if len(existing) > 0 {
		return fmt.Errorf("certs: %s already holds %s; refusing to overwrite (use Force to replace them)",
			dir, strings.Join(existing, ", "))
	}
	return nil
}

// writeFileAtomic writes data to dir/name through a temporary file in the
// same directory and a rename, so that a reader sees the old file or the new
// one, never a partial one. The mode is set explicitly (not subject to the
// umask).
func writeFileAtomic(dir, name string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// syncDir makes the renames durable where the platform allows it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("certs: sync %s: %w", dir, err)
	}
	return nil
}
