package xmlsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// The test-only builder below makes signatures the production Signer never
// would (SHA-1, HMAC, two References, XPath, ECDSA, ...), each correctly
// signed, so that a rejection proves the policy refused it and not that the
// cryptography happened to fail.

const (
	algSHA1       = "http://www.w3.org/2000/09/xmldsig#sha1"
	algRSASHA1    = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	algHMACSHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
	algXPath      = "http://www.w3.org/TR/1999/REC-xpath-19991116"
	algC14N11     = "http://www.w3.org/2006/12/xml-c14n11"
)

var hashOf = map[string]crypto.Hash{
	algSHA1: crypto.SHA1, AlgSHA256: crypto.SHA256, AlgSHA384: crypto.SHA384, AlgSHA512: crypto.SHA512,
	algRSASHA1: crypto.SHA1, AlgRSASHA256: crypto.SHA256, AlgRSASHA384: crypto.SHA384, AlgRSASHA512: crypto.SHA512,
	AlgECDSASHA256: crypto.SHA256, AlgECDSASHA384: crypto.SHA384, AlgECDSASHA512: crypto.SHA512,
	algHMACSHA256: crypto.SHA256,
}

type refSpec struct {
	uri        string   // "#m1" by default
	transforms []string // enveloped + exc-c14n by default
	digest     string   // SHA-256 by default
	target     string   // ID of the element digested; the root by default
}

type sigSpec struct {
	key       crypto.Signer
	certs     []*x509.Certificate // KeyInfo X509Certificates; nil with noKeyInfo omits KeyInfo
	noKeyInfo bool
	prefix    string // "ds" by default; "-" for the default namespace
	c14n      string // exc-c14n by default
	method    string // by key type by default
	hmacKey   []byte // sign with HMAC instead of key
	refs      []refSpec
	ecdsaDER  bool                     // write ECDSA as DER (what goxmldsig does) instead of r||s
	extra     func(sig *etree.Element) // mutate the Signature before it is signed
	afterSign func(sig *etree.Element) // mutate it after signing
}

func findByID(el *etree.Element, id string) *etree.Element {
	if el.SelectAttrValue("ID", "") == id {
		return el
	}
	for _, c := range el.ChildElements() {
		if f := findByID(c, id); f != nil {
			return f
		}
	}
	return nil
}

// buildSigned signs doc (unsigned, with a root ID) according to spec.
func buildSigned(tb testing.TB, doc []byte, spec sigSpec) []byte {
	tb.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		tb.Fatal(err)
	}
	root := d.Root()
	rootID := root.SelectAttrValue("ID", "")

	prefix := spec.prefix
	if prefix == "" {
		prefix = "ds"
	}
	if prefix == "-" {
		prefix = ""
	}
	mk := func(parent *etree.Element, tag string) *etree.Element {
		e := parent.CreateElement(tag)
		e.Space = prefix
		return e
	}
	sig := etree.NewElement("Signature")
	sig.Space = prefix
	if prefix == "" {
		sig.CreateAttr("xmlns", NamespaceDSig)
	} else {
		sig.CreateAttr("xmlns:"+prefix, NamespaceDSig)
	}
	si := mk(sig, "SignedInfo")
	c14n := spec.c14n
	if c14n == "" {
		c14n = AlgExcC14N
	}
	mk(si, "CanonicalizationMethod").CreateAttr("Algorithm", c14n)
	method := spec.method
	if method == "" {
		if _, ok := spec.key.Public().(*ecdsa.PublicKey); ok {
			method = AlgECDSASHA256
		} else {
			method = AlgRSASHA256
		}
	}
	mk(si, "SignatureMethod").CreateAttr("Algorithm", method)
	refs := spec.refs
	if refs == nil {
		refs = []refSpec{{}}
	}
	for _, r := range refs {
		uri := r.uri
		if uri == "" {
			uri = "#" + rootID
		}
		if uri == "EMPTY" {
			uri = ""
		}
		ts := r.transforms
		if ts == nil {
			ts = []string{AlgEnveloped, AlgExcC14N}
		}
		dalg := r.digest
		if dalg == "" {
			dalg = AlgSHA256
		}
		target := root
		if r.target != "" {
			target = findByID(root, r.target)
		}
		// Digest the target as a verifier would: detached with its
		// in-scope namespaces, then the last c14n transform.
		nsctx, err := etreeutils.NSBuildParentContext(target)
		if err != nil {
			tb.Fatal(err)
		}
		det, err := etreeutils.NSDetatch(nsctx, target)
		if err != nil {
			tb.Fatal(err)
		}
		canon := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
		for _, t := range ts {
			if t == AlgExcC14NWithComments {
				canon = dsig.MakeC14N10ExclusiveWithCommentsCanonicalizerWithPrefixList("")
			}
		}
		b, err := canon.Canonicalize(det)
		if err != nil {
			tb.Fatal(err)
		}
		h := hashOf[dalg].New()
		h.Write(b)

		ref := mk(si, "Reference")
		ref.CreateAttr("URI", uri)
		tr := mk(ref, "Transforms")
		for _, t := range ts {
			x := mk(tr, "Transform")
			x.CreateAttr("Algorithm", t)
			if t == algXPath {
				mk(x, "XPath").SetText("not(ancestor-or-self::ds:Signature)")
			}
		}
		mk(ref, "DigestMethod").CreateAttr("Algorithm", dalg)
		mk(ref, "DigestValue").SetText(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
	if spec.extra != nil {
		spec.extra(sig)
	}

	// Canonicalise SignedInfo in its final context (inside the root).
	root.AddChild(sig)
	nsctx, err := etreeutils.NSBuildParentContext(si)
	if err != nil {
		tb.Fatal(err)
	}
	det, err := etreeutils.NSDetatch(nsctx, si)
	if err != nil {
		tb.Fatal(err)
	}
	canon := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if c14n == AlgExcC14NWithComments {
		canon = dsig.MakeC14N10ExclusiveWithCommentsCanonicalizerWithPrefixList("")
	}
	signedInfo, err := canon.Canonicalize(det)
	if err != nil {
		tb.Fatal(err)
	}
	hash, ok := hashOf[method]
	if !ok {
		hash = crypto.SHA256
	}
	h := hash.New()
	h.Write(signedInfo)
	digest := h.Sum(nil)
	var value []byte
	switch {
	case spec.hmacKey != nil:
		m := hmac.New(hash.New, spec.hmacKey)
		m.Write(signedInfo)
		value = m.Sum(nil)
	default:
		value, err = spec.key.Sign(rand.Reader, digest, hash)
		if err != nil {
			tb.Fatal(err)
		}
		if pub, ok := spec.key.Public().(*ecdsa.PublicKey); ok && !spec.ecdsaDER {
			value = derToRaw(tb, value, pub)
		}
	}
	mk(sig, "SignatureValue").SetText(base64.StdEncoding.EncodeToString(value))
	if !spec.noKeyInfo {
		certs := spec.certs
		xd := mk(mk(sig, "KeyInfo"), "X509Data")
		for _, c := range certs {
			mk(xd, "X509Certificate").SetText(base64.StdEncoding.EncodeToString(c.Raw))
		}
	}
	if spec.afterSign != nil {
		spec.afterSign(sig)
	}
	d.WriteSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	out, err := d.WriteToBytes()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// derToRaw converts an ASN.1 ECDSA signature to XML-DSig r||s.
func derToRaw(tb testing.TB, der []byte, pub *ecdsa.PublicKey) []byte {
	tb.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		tb.Fatal(err)
	}
	n := (pub.Curve.Params().N.BitLen() + 7) / 8
	out := make([]byte, 2*n)
	rs.R.FillBytes(out[:n])
	rs.S.FillBytes(out[n:])
	return out
}
