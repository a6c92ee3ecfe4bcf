package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type material struct {
	ecKey   *ecdsa.PrivateKey
	ecCert  []byte // PEM
	rsaKey  *rsa.PrivateKey
	rsaCert []byte
	edKey   ed25519.PrivateKey
	edCert  []byte
}

func certPEM(t *testing.T, pub crypto.PublicKey, signer crypto.Signer, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newMaterial(t *testing.T) *material {
	t.Helper()
	m := &material{}
	var err error
	if m.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if m.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if _, m.edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	m.ecCert = certPEM(t, m.ecKey.Public(), m.ecKey, "ec")
	m.rsaCert = certPEM(t, m.rsaKey.Public(), m.rsaKey, "rsa")
	m.edCert = certPEM(t, m.edKey.Public(), m.edKey, "ed")
	return m
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der)
}

func write(t *testing.T, dir, name string, parts ...[]byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	var all []byte
	for _, b := range parts {
		all = append(all, b...)
	}
	if err := os.WriteFile(p, all, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPool(t *testing.T) {
	m := newMaterial(t)
	dir := t.TempDir()
	one := write(t, dir, "one.pem", m.ecCert)
	two := write(t, dir, "two.pem", []byte("Subject: explanatory text is ignored\n"), m.rsaCert, []byte("\n"), m.edCert)

	pool, certs, err := LoadPool(one, two)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 3 || certs[0].Subject.CommonName != "ec" || certs[1].Subject.CommonName != "rsa" || certs[2].Subject.CommonName != "ed" {
		t.Fatalf("certs = %v", certs)
	}
	if _, err := certs[1].Verify(x509.VerifyOptions{Roots: pool, CurrentTime: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatalf("pool does not hold the certificate: %v", err)
	}

	ecDER, _ := x509.MarshalECPrivateKey(m.ecKey)
	ecBlock, _ := pem.Decode(m.ecCert)
	truncated := []byte(strings.TrimSuffix(string(m.rsaCert), "-----END CERTIFICATE-----\n"))
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"fail/empty", nil, "no CERTIFICATE block"},
		{"fail/not-pem", []byte("hello"), "no CERTIFICATE block"},
		{"fail/der-not-pem", ecBlock.Bytes, "no CERTIFICATE block"},
		{"fail/private-key", append(append([]byte{}, m.ecCert...), pkcs8(t, m.ecKey)...), `PEM block 2 is "PRIVATE KEY"`},
		{"fail/ec-key-only", pemOf("EC PRIVATE KEY", ecDER), `"EC PRIVATE KEY"`},
		{"fail/garbage-certificate", pemOf("CERTIFICATE", []byte("not DER")), "certificate 1"},
		{"fail/truncated-block", append(append([]byte{}, m.ecCert...), truncated...), "malformed PEM"},
		{"fail/headers", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"X": "y"}, Bytes: []byte{1}}), "headers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, dir, strings.ReplaceAll(tc.name, "/", "_")+".pem", tc.file)
			_, _, err := LoadPool(one, p)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q should name %s and say %q", err, p, tc.want)
			}
		})
	}
	if _, _, err := LoadPool(); err == nil {
		t.Error("LoadPool() with no files succeeded")
	}
	missing := filepath.Join(dir, "missing.pem")
	if _, _, err := LoadPool(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadKeyPair(t *testing.T) {
	m := newMaterial(t)
	dir := t.TempDir()
	ecSEC1, _ := x509.MarshalECPrivateKey(m.ecKey)
	ecParams := pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	rsaPKCS1 := pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.rsaKey))
	ca := certPEM(t, m.ecKey.Public(), m.ecKey, "extra") // a second certificate after the leaf

	ok := []struct {
		name string
		cert []byte
		key  []byte
		pub  crypto.PublicKey
	}{
		{"ok/rsa-pkcs8", m.rsaCert, pkcs8(t, m.rsaKey), m.rsaKey.Public()},
		{"ok/rsa-pkcs1", m.rsaCert, rsaPKCS1, m.rsaKey.Public()},
		{"ok/ec-pkcs8", m.ecCert, pkcs8(t, m.ecKey), m.ecKey.Public()},
		{"ok/ec-sec1", m.ecCert, pemOf("EC PRIVATE KEY", ecSEC1), m.ecKey.Public()},
		{"ok/ec-sec1-with-parameters", m.ecCert, append(append([]byte{}, ecParams...), pemOf("EC PRIVATE KEY", ecSEC1)...), m.ecKey.Public()},
		{"ok/ed25519-pkcs8", m.edCert, pkcs8(t, m.edKey), m.edKey.Public()},
		{"ok/chain", append(append([]byte{}, m.rsaCert...), ca...), rsaPKCS1, m.rsaKey.Public()},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			cp := write(t, dir, "c.pem", tc.cert)
			kp := write(t, dir, "k.pem", tc.key)
			key, chain, err := LoadKeyPair(cp, kp)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
				t.Fatal("wrong key")
			}
			if len(chain) == 0 || !chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
				t.Fatal("leaf is not first")
			}
			if tc.name == "ok/chain" && (len(chain) != 2 || chain[1].Subject.CommonName != "extra") {
				t.Fatalf("chain = %v", chain)
			}
		})
	}

	enc := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})
	fail := []struct {
		name     string
		cert     []byte
		key      []byte
		want     string
		keyNamed bool // the error names the key file (else the cert file)
	}{
		{"fail/mismatch", m.rsaCert, pkcs8(t, m.ecKey), "does not match", true},
		{"fail/leaf-not-first", append(append([]byte{}, ca...), m.rsaCert...), rsaPKCS1, "leaf must come first", true},
		{"fail/two-keys", m.rsaCert, append(append([]byte{}, rsaPKCS1...), pkcs8(t, m.rsaKey)...), "more than one private key", true},
		{"fail/no-key", m.rsaCert, ecParams, "no private key", true},
		{"fail/empty-key-file", m.rsaCert, nil, "no private key", true},
		{"fail/encrypted-pkcs8", m.rsaCert, pemOf("ENCRYPTED PRIVATE KEY", []byte{1}), "encrypted", true},
		{"fail/encrypted-legacy", m.rsaCert, enc, "encrypted", true},
		{"fail/certificate-as-key", m.rsaCert, m.rsaCert, `"CERTIFICATE"`, true},
		{"fail/garbage-key", m.rsaCert, pemOf("PRIVATE KEY", []byte("junk")), "private key", true},
		{"fail/truncated-key", m.rsaCert, []byte(strings.TrimSuffix(string(rsaPKCS1), "-----END RSA PRIVATE KEY-----\n")), "malformed PEM", true},
		{"fail/key-in-cert-file", append(append([]byte{}, m.rsaCert...), rsaPKCS1...), rsaPKCS1, `"RSA PRIVATE KEY"`, false},
		{"fail/no-certificate", nil, rsaPKCS1, "no CERTIFICATE", false},
	}
	for _, tc := range fail {
		t.Run(tc.name, func(t *testing.T) {
			cp := write(t, dir, "c.pem", tc.cert)
			kp := write(t, dir, "k.pem", tc.key)
			_, _, err := LoadKeyPair(cp, kp)
			if err == nil {
				t.Fatal("no error")
			}
			named := cp
			if tc.keyNamed {
				named = kp
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), named) {
				t.Fatalf("error %q should name %s and say %q", err, named, tc.want)
			}
		})
	}
}
