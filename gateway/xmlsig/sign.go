package xmlsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
)

// Signer signs enveloped: SignedInfo with exclusive c14n
// (http://www.w3.org/2001/10/xml-exc-c14n#), one Reference URI="#<root ID>"
// with exactly the transforms enveloped-signature + exc-c14n, DigestMethod
// SHA-256, SignatureMethod rsa-sha256, KeyInfo/X509Data with the leaf (and
// intermediates) as X509Certificate; the ds:Signature (prefix "ds") appended
// as the LAST child of the root. It refuses a document that already has a
// Signature or whose root has no ID.
//
// Only RSA keys are accepted: goxmldsig v1.6.1 writes an ECDSA SignatureValue
// as ASN.1 DER, not the r||s that XML-DSig requires, so its ECDSA signatures
// do not verify in xmlsec1 or any other conforming verifier (see the package
// comment). Verify does accept standard r||s ECDSA signatures.
//
// A Signer is safe for concurrent use if its crypto.Signer is.
type Signer struct {
	key   crypto.Signer
	chain []*x509.Certificate
	der   [][]byte
}

// NewSigner returns a Signer for key and its certificate chain, leaf first.
// It checks that key matches the leaf and that it is an RSA key of at least
// 2048 bits; ECDSA keys are refused (sig.unsupported_key) because of the
// goxmldsig encoding bug described on Signer.
func NewSigner(key crypto.Signer, chain []*x509.Certificate) (*Signer, error) {
	if key == nil || len(chain) == 0 || chain[0] == nil {
		return nil, errs.E(errs.Other, CodeConfig, "xmlsig: a key and at least the leaf certificate are required")
	}
	leaf := chain[0]
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errs.E(errs.Invalid, CodeKeyMismatch, "xmlsig: the key does not match the leaf certificate")
	}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, errs.E(errs.Invalid, CodeWeakKey, "xmlsig: RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
		if k.N.BitLen() > 8192 {
			return nil, errs.E(errs.Invalid, CodeUnsupportedKey, "xmlsig: RSA keys above 8192 bits are not accepted by Verify")
		}
	case *ecdsa.PublicKey:
		return nil, errs.E(errs.Invalid, CodeUnsupportedKey,
			"xmlsig: ECDSA signing keys are not supported: goxmldsig v1.6.1 writes ECDSA SignatureValue as ASN.1 DER instead of the r||s XML-DSig requires, so xmlsec1 and other verifiers reject it; use an RSA key of 2048 bits or more")
	default:
		return nil, errs.E(errs.Invalid, CodeUnsupportedKey, "xmlsig: only RSA signing keys are supported")
	}
	s := &Signer{key: key}
	for _, c := range chain {
		if c == nil {
			return nil, errs.E(errs.Other, CodeConfig, "xmlsig: nil certificate in the chain")
		}
		s.chain = append(s.chain, c)
		s.der = append(s.der, c.Raw)
	}
	if len(s.der) > maxKeyInfoCerts {
		return nil, errs.E(errs.Other, CodeConfig, "xmlsig: at most %d certificates fit in KeyInfo", maxKeyInfoCerts)
	}
	return s, nil
}

// Certificate returns the signer's leaf certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.chain[0] }

// Sign returns doc with an enveloped signature appended as the root's last
// child, serialised as UTF-8 with an XML declaration. doc is run through
// xmlsafe.Check with xmlsafe.Manifest limits first, and must satisfy the
// same ID rules Verify enforces. Before returning, Sign checks that its
// output passes the structural policy and goxmldsig's verification, so it
// never hands out a signature Verify would refuse for its form.
func (s *Signer) Sign(doc []byte) ([]byte, error) { return s.SignWithLimits(doc, xmlsafe.Manifest) }

// SignWithLimits is Sign for documents with other limits than a manifest's
// (the gateway's Acceptance carries a whole manifest in base64).
func (s *Signer) SignWithLimits(doc []byte, lim xmlsafe.Limits) ([]byte, error) {
	t, err := parse(doc, lim)
	if err != nil {
		return nil, asInvalid(err)
	}
	if len(t.signatures()) > 0 {
		return nil, errs.E(errs.Invalid, CodeAlreadySigned, "document already has a ds:Signature")
	}
	for _, el := range t.els {
		if t.ns[el] == NamespaceDSig {
			return nil, errs.E(errs.Invalid, CodePolicy, "document already has XML-DSig elements")
		}
	}
	if t.root.SelectAttr(IDAttr) == nil {
		return nil, errs.E(errs.Invalid, CodeNoID, "root element has no ID attribute")
	}
	if _, e := t.rootID(); e != nil {
		return nil, asInvalid(e)
	}

	ctx, err := dsig.NewSigningContext(s.key, s.der)
	if err != nil {
		return nil, errs.Wrap(errs.Other, CodeInternal, redact(err), "xmlsig: signing context")
	}
	ctx.Prefix = dsig.DefaultPrefix
	ctx.IdAttribute = IDAttr
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(AlgRSASHA256); err != nil {
		return nil, errs.Wrap(errs.Other, CodeInternal, redact(err), "xmlsig: signature method")
	}
	// ConstructSignature canonicalises its argument in place; give it a copy
	// so that the document keeps its own namespace declarations and
	// attribute order (both irrelevant to exclusive c14n).
	sig, err := ctx.ConstructSignature(t.root.Copy(), true)
	if err != nil {
		return nil, errs.Wrap(errs.Other, CodeInternal, redact(err), "xmlsig: signing failed")
	}
	t.root.AddChild(sig)

	out := etree.NewDocument()
	out.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	out.CreateText("\n")
	out.SetRoot(t.root)
	out.CreateText("\n")
	// Canonical escaping writes CR, TAB and LF in attribute values and CR in
	// text as character references, so that re-parsing yields the same
	// characters and the same digest.
	out.WriteSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	signed, err := out.WriteToBytes()
	if err != nil {
		return nil, errs.Wrap(errs.Other, CodeInternal, redact(err), "xmlsig: serialising the signed document")
	}
	if err := s.selfCheck(signed, lim); err != nil {
		return nil, err
	}
	return signed, nil
}

// selfCheck runs Verify's structural policy and goxmldsig on the output,
// without chain validation (the Signer has no trust store).
func (s *Signer) selfCheck(signed []byte, lim xmlsafe.Limits) error {
	t, err := parse(signed, lim)
	if err != nil {
		// Most likely the signature pushed the document over a limit.
		return asInvalid(err)
	}
	st, e := checkStructure(t)
	if e != nil {
		return errs.Wrap(errs.Other, CodeInternal, e, "xmlsig: signed output fails the policy")
	}
	leaf := s.chain[0]
	if _, e := cryptoCheck(t, st, leaf, leaf.NotBefore); e != nil {
		return errs.Wrap(errs.Other, CodeInternal, e, "xmlsig: signed output does not verify")
	}
	return nil
}

// asInvalid returns err with Kind BadSignature turned into Invalid: in Sign
// the input is the caller's own document, not a signature to judge.
func asInvalid(err error) error {
	e, ok := err.(*errs.Error)
	if !ok || e.Kind != errs.BadSignature {
		return err
	}
	c := *e
	c.Kind = errs.Invalid
	return &c
}
