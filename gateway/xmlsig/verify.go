package xmlsig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
)

// Policy is what Verify enforces beyond the fixed rules of the package
// comment.
type Policy struct {
	Roots         *x509.CertPool     // trust anchors; required
	Intermediates *x509.CertPool     // optional; certificates in KeyInfo beyond the leaf are used as intermediates too
	Now           func() time.Time   // injected clock; nil = time.Now
	Limits        xmlsafe.Limits     // zero fields take the values of xmlsafe.Manifest
	Root          xml.Name           // required root {Space, Local}; anything else is refused (sig.policy)
	KeyUsages     []x509.ExtKeyUsage // nil = x509.ExtKeyUsageAny
}

// Verified is the result of a successful Verify.
type Verified struct {
	// Element is the element returned by goxmldsig's
	// ValidationContext.Validate: the root re-parsed from the exact bytes
	// that were digested (exclusive c14n, Signature removed). Callers read
	// business data ONLY from this element, never from the document they
	// passed in.
	Element     *etree.Element
	Certificate *x509.Certificate   // the signer's leaf, chain-validated
	Chain       []*x509.Certificate // leaf first, trust anchor last
}

// Verify checks doc under the strict policy of the package comment and p,
// in this order, each with its own code: xmlsafe.Check; etree parse; root
// name (sig.policy); root ID uniqueness (sig.policy); exactly one
// ds:Signature as the root's last child (sig.missing / sig.policy);
// SignedInfo algorithms (sig.algorithm) and shape (sig.policy); KeyInfo
// (sig.policy); key strength (sig.weak_key); certificate validity
// (sig.expired / sig.not_yet_valid) and chain (sig.untrusted); and finally
// goxmldsig's digest and signature check (sig.invalid).
//
// Error messages never contain document content or certificate names.
func Verify(doc []byte, p Policy) (*Verified, error) {
	if p.Roots == nil {
		return nil, errs.E(errs.Other, CodeConfig, "xmlsig: Policy.Roots is required")
	}
	if p.Root.Local == "" {
		return nil, errs.E(errs.Other, CodeConfig, "xmlsig: Policy.Root is required")
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	t, err := parse(doc, p.Limits.Or(xmlsafe.Manifest))
	if err != nil {
		return nil, err
	}
	if t.name(t.root) != p.Root {
		return nil, bad(CodePolicy, "root element is not the expected document type")
	}
	s, e := checkStructure(t)
	if e != nil {
		return nil, e
	}

	leaf := s.certs[0]
	if e := checkKey(leaf, s.method); e != nil {
		return nil, e
	}
	at := now()
	if at.Before(leaf.NotBefore) {
		return nil, bad(CodeNotYetValid, "signing certificate is not valid yet")
	}
	if at.After(leaf.NotAfter) {
		return nil, bad(CodeExpired, "signing certificate has expired")
	}
	if leaf.IsCA {
		return nil, bad(CodeUntrusted, "signing certificate is a CA certificate")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, bad(CodeUntrusted, "signing certificate's key usage does not allow digital signatures")
	}
	inter := x509.NewCertPool()
	if p.Intermediates != nil {
		inter = p.Intermediates.Clone()
	}
	for _, c := range s.certs[1:] {
		inter.AddCert(c)
	}
	usages := p.KeyUsages
	if len(usages) == 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         p.Roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     usages,
	})
	if err != nil || len(chains) == 0 {
		return nil, chainError(err)
	}

	el, e := cryptoCheck(t, s, leaf, at)
	if e != nil {
		return nil, e
	}
	return &Verified{Element: el, Certificate: leaf, Chain: chains[0]}, nil
}

// checkKey refuses weak keys and a SignatureMethod that does not fit the key.
func checkKey(leaf *x509.Certificate, m sigMethod) *errs.Error {
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return bad(CodeWeakKey, "RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
		if k.N.BitLen() > 8192 {
			return bad(CodePolicy, "RSA key of more than 8192 bits is not accepted")
		}
		if m.keyAlg != x509.RSA {
			return bad(CodeAlgorithm, "SignatureMethod does not match the certificate's RSA key")
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return bad(CodeWeakKey, "ECDSA curve below P-256 or unknown")
		}
		if m.keyAlg != x509.ECDSA {
			return bad(CodeAlgorithm, "SignatureMethod does not match the certificate's ECDSA key")
		}
	default:
		return bad(CodeAlgorithm, "certificate key type is not RSA or ECDSA")
	}
	return nil
}

// cryptoCheck hands the tree to goxmldsig with a store holding only the
// already chain-validated leaf and returns the element goxmldsig returns.
func cryptoCheck(t *tree, s *signed, leaf *x509.Certificate, at time.Time) (*etree.Element, *errs.Error) {
	if s.method.keyAlg == x509.ECDSA {
		// XML-DSig (RFC 4051) encodes ECDSA as r||s; goxmldsig passes the
		// bytes to x509.CheckSignature, which wants ASN.1 DER. SignatureValue
		// is not covered by any digest, so rewriting its encoding in our own
		// parsed copy changes nothing that is signed.
		der, err := rawECDSAToDER(text(s.signatureValue), leaf.PublicKey.(*ecdsa.PublicKey))
		if err != nil {
			return nil, bad(CodeInvalid, "ECDSA SignatureValue is not r||s of the curve's size")
		}
		s.signatureValue.SetText(der)
	}
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{leaf}})
	ctx.Clock = dsig.NewFakeClockAt(at)
	ctx.IdAttribute = IDAttr
	el, err := ctx.Validate(t.root)
	if err != nil {
		e := bad(CodeInvalid, "signature does not verify")
		e.Err = redact(err)
		return nil, e
	}
	// Defence in depth: what goxmldsig returns must be the root we checked.
	if el == nil || el.Tag != t.root.Tag || el.NamespaceURI() != t.ns[t.root] || el.SelectAttrValue(IDAttr, "") != s.rootID {
		return nil, bad(CodeInvalid, "signed content is not the root element")
	}
	return el, nil
}

// chainError maps a chain-building failure to sig.untrusted. The x509
// error texts can quote a certificate's common name (UnknownAuthorityError
// names the candidate issuer, which may come from KeyInfo), so only a fixed
// description of the failure is kept as the cause.
func chainError(err error) *errs.Error {
	e := bad(CodeUntrusted, "signing certificate does not chain to a trusted root")
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv):
		switch inv.Reason {
		case x509.Expired:
			e.Msg = "a certificate in the signer's chain is outside its validity period"
		case x509.IncompatibleUsage:
			e.Msg = "signing certificate's extended key usage is not allowed by the policy"
		default:
			e.Msg = "a certificate in the signer's chain is not valid for this use"
		}
		e.Err = redacted{fmt.Sprintf("x509: certificate invalid (reason %d)", inv.Reason)}
	case errors.As(err, &ua):
		e.Err = redacted{"x509: certificate signed by unknown authority"}
	default:
		e.Err = redacted{"x509: chain verification failed"}
	}
	return e
}
