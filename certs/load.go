package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// PEM block types.
const (
	pemCertificate  = "CERTIFICATE"
	pemPKCS8        = "PRIVATE KEY"
	pemPKCS1        = "RSA PRIVATE KEY"
	pemEC           = "EC PRIVATE KEY"
	pemECParameters = "EC PARAMETERS" // written by `openssl ecparam -genkey`; skipped
	pemEncrypted    = "ENCRYPTED PRIVATE KEY"
)

// LoadPool reads PEM files that hold CERTIFICATE blocks only (a trust store,
// for example the CA certificates of the municipalities' and regions'
// certificate issuers) and returns a pool of all of them and the parsed
// certificates in file order. A file without any certificate, with another
// block type (a private key in a trust store is an error, not something to
// skip), with PEM headers, with a malformed PEM block or with a certificate
// that does not parse is an error naming the file.
func LoadPool(paths ...string) (*x509.CertPool, []*x509.Certificate, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("certs: no trust store file given")
	}
	pool := x509.NewCertPool()
	var all []*x509.Certificate
	for _, p := range paths {
		cs, err := readCertificates(p)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range cs {
			pool.AddCert(c)
		}
		all = append(all, cs...)
	}
	return pool, all, nil
}

// LoadKeyPair reads a private key and its certificate chain. keyPath holds
// exactly one unencrypted private key in PEM: PKCS#8 ("PRIVATE KEY"),
// PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY", optionally after an
// "EC PARAMETERS" block). certPath holds the chain as CERTIFICATE blocks,
// leaf first; the key must match the leaf. The chain is returned as read.
func LoadKeyPair(certPath, keyPath string) (crypto.Signer, []*x509.Certificate, error) {
	chain, err := readCertificates(certPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := readPrivateKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, nil, fmt.Errorf("certs: private key in %s does not match the first certificate in %s (the leaf must come first)", keyPath, certPath)
	}
	return key, chain, nil
}

// pemBlocks decodes every PEM block of a file and refuses malformed ones:
// pem.Decode silently skips a block it cannot parse, so the number of
// "-----BEGIN " markers must equal the number of blocks decoded.
func pemBlocks(path string) ([]*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if n := bytes.Count(data, []byte("-----BEGIN ")); n != len(blocks) {
		return nil, fmt.Errorf("certs: %s: malformed PEM (%d BEGIN lines, %d complete blocks)", path, n, len(blocks))
	}
	return blocks, nil
}

func readCertificates(path string) ([]*x509.Certificate, error) {
	blocks, err := pemBlocks(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for i, b := range blocks {
		if b.Type != pemCertificate {
			return nil, fmt.Errorf("certs: %s: PEM block %d is %q; only CERTIFICATE blocks are allowed", path, i+1, b.Type)
		}
		if len(b.Headers) > 0 {
			return nil, fmt.Errorf("certs: %s: PEM block %d has headers; certificates must not have any", path, i+1)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: certificate %d: %w", path, i+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certs: %s: no CERTIFICATE block found", path)
	}
	return out, nil
}

func readPrivateKey(path string) (crypto.Signer, error) {
	blocks, err := pemBlocks(path)
	if err != nil {
		return nil, err
	}
	var key crypto.Signer
	for i, b := range blocks {
		if b.Type == pemECParameters {
			continue
		}
		if b.Type == pemEncrypted || b.Headers["Proc-Type"] != "" {
			return nil, fmt.Errorf("certs: %s: PEM block %d is an encrypted private key; give an unencrypted key (protect it with file permissions or an HSM)", path, i+1)
		}
		if len(b.Headers) > 0 {
			return nil, fmt.Errorf("certs: %s: PEM block %d has unexpected headers", path, i+1)
		}
		var k any
		switch b.Type {
		case pemPKCS8:
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case pemPKCS1:
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case pemEC:
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			return nil, fmt.Errorf("certs: %s: PEM block %d is %q; want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", path, i+1, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("certs: %s: private key: %w", path, err)
		}
		if key != nil {
			return nil, fmt.Errorf("certs: %s: more than one private key", path)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("certs: %s: private key of type %T cannot sign", path, k)
		}
		key = s
	}
	if key == nil {
		return nil, fmt.Errorf("certs: %s: no private key found", path)
	}
	return key, nil
}
