package blob_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/gateway/blob/blobtest"
	"github.com/rehabgw/rehabgw/gateway/errs"
)

// Over TLS minio-go signs the payload of every request (no chunk framing):
// byte-exact round trips through a CA given in CAFile, and clear start-up
// errors when the CA or the scheme is wrong.
func TestMinIOTLS(t *testing.T) {
	certs, ca := testCerts(t)
	cfg := startMinIO(t, minioOptions{certsDir: certs, caFile: ca})

	t.Run("ok/ca-file", func(t *testing.T) {
		s := newS3(t, cfg)
		for _, n := range []int64{0, 1024, blob.PartSize + 1} {
			want := blobtest.Put(t, s, "tls", n, 3)
			if got, m := blobtest.Read(t, s, "tls"); got != want || m != n {
				t.Fatalf("%d bytes over TLS did not round-trip", n)
			}
		}
	})
	for name, c := range map[string]struct {
		mod  func(*blob.S3Config)
		want string
	}{
		"fail/no-ca":      {func(c *blob.S3Config) { c.CAFile = "" }, "CAFile"},
		"fail/plain-http": {func(c *blob.S3Config) { c.Secure, c.CAFile = false, "" }, "Secure"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := cfg
			c.mod(&bad)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := blob.NewS3(ctx, bad)
			t.Logf("NewS3: %v", err)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewS3: %v, want an error naming %s", err, c.want)
			}
			if name == "fail/no-ca" && errs.KindOf(err) != errs.Invalid {
				t.Fatalf("kind %v, want Invalid", errs.KindOf(err))
			}
		})
	}
}

// testCerts writes a throw-away CA and a server certificate for 127.0.0.1
// into a MinIO certs directory, and returns it and the CA file.
func testCerts(t *testing.T) (certsDir, caFile string) {
	t.Helper()
	dir := t.TempDir()
	certsDir = filepath.Join(dir, "certs")
	if err := os.Mkdir(certsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rehabgw test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(p, typ string, b []byte) {
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(certsDir, "public.crt"), "CERTIFICATE", der)
	write(filepath.Join(certsDir, "private.key"), "PRIVATE KEY", keyDER)
	caFile = filepath.Join(dir, "ca.pem")
	write(caFile, "CERTIFICATE", caDER)
	return certsDir, caFile
}

func TestSecureAgainstPlainHTTP(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), "127.0.0.1:0")
	cfg := e.Config()
	cfg.Secure = true
	_, err := blob.NewS3(context.Background(), cfg)
	if errs.KindOf(err) != errs.Invalid || !strings.Contains(err.Error(), "Secure") {
		t.Fatalf("NewS3 with Secure against plain HTTP: %v", err)
	}
}
