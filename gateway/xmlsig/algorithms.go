package xmlsig

import (
	"crypto"
	"crypto/x509"
)

// Namespaces and algorithm identifiers used by the policy.
const (
	// NamespaceDSig is the XML-DSig namespace.
	NamespaceDSig = "http://www.w3.org/2000/09/xmldsig#"
	// NamespaceExcC14N is the namespace of ec:InclusiveNamespaces.
	NamespaceExcC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

	AlgExcC14N             = "http://www.w3.org/2001/10/xml-exc-c14n#"
	AlgExcC14NWithComments = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
	AlgEnveloped           = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

	AlgSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	AlgSHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	AlgSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

	AlgRSASHA256   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgRSASHA384   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
	AlgRSASHA512   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	AlgECDSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	AlgECDSASHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	AlgECDSASHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
)

// IDAttr is the name of the (unprefixed) attribute that identifies the
// signed root element.
const IDAttr = "ID"

type sigMethod struct {
	keyAlg x509.PublicKeyAlgorithm
	hash   crypto.Hash
}

// allowedSignatureMethods is the closed list of SignatureMethod algorithms
// Verify accepts. SHA-1, HMAC and everything else are refused.
var allowedSignatureMethods = map[string]sigMethod{
	AlgRSASHA256:   {x509.RSA, crypto.SHA256},
	AlgRSASHA384:   {x509.RSA, crypto.SHA384},
	AlgRSASHA512:   {x509.RSA, crypto.SHA512},
	AlgECDSASHA256: {x509.ECDSA, crypto.SHA256},
	AlgECDSASHA384: {x509.ECDSA, crypto.SHA384},
	AlgECDSASHA512: {x509.ECDSA, crypto.SHA512},
}

// allowedDigestMethods is the closed list of DigestMethod algorithms.
var allowedDigestMethods = map[string]crypto.Hash{
	AlgSHA256: crypto.SHA256,
	AlgSHA384: crypto.SHA384,
	AlgSHA512: crypto.SHA512,
}

// knownRefused names algorithms that are recognised but refused, so that an
// error message can say which one was seen without echoing input.
var knownRefused = map[string]string{
	"http://www.w3.org/2000/09/xmldsig#sha1":                       "SHA-1",
	"http://www.w3.org/2000/09/xmldsig#rsa-sha1":                   "RSA-SHA1",
	"http://www.w3.org/2000/09/xmldsig#dsa-sha1":                   "DSA-SHA1",
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1":            "ECDSA-SHA1",
	"http://www.w3.org/2000/09/xmldsig#hmac-sha1":                  "HMAC-SHA1",
	"http://www.w3.org/2001/04/xmldsig-more#hmac-sha256":           "HMAC-SHA256",
	"http://www.w3.org/2001/04/xmldsig-more#hmac-sha384":           "HMAC-SHA384",
	"http://www.w3.org/2001/04/xmldsig-more#hmac-sha512":           "HMAC-SHA512",
	"http://www.w3.org/2001/04/xmldsig-more#md5":                   "MD5",
	"http://www.w3.org/2001/04/xmldsig-more#rsa-md5":               "RSA-MD5",
	"http://www.w3.org/2001/04/xmldsig-more#sha224":                "SHA-224",
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha224":            "RSA-SHA224",
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha224":          "ECDSA-SHA224",
	"http://www.w3.org/2001/04/xmlenc#ripemd160":                   "RIPEMD-160",
	"http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1":       "RSA-PSS",
	AlgExcC14NWithComments:                                         "exclusive c14n with comments",
	"http://www.w3.org/TR/2001/REC-xml-c14n-20010315":              "inclusive c14n 1.0",
	"http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": "inclusive c14n 1.0 with comments",
	"http://www.w3.org/2006/12/xml-c14n11":                         "c14n 1.1",
	"http://www.w3.org/2006/12/xml-c14n11#WithComments":            "c14n 1.1 with comments",
	"http://www.w3.org/TR/1999/REC-xpath-19991116":                 "XPath",
	"http://www.w3.org/2002/06/xmldsig-filter2":                    "XPath Filter 2.0",
	"http://www.w3.org/TR/1999/REC-xslt-19991116":                  "XSLT",
	"http://www.w3.org/2000/09/xmldsig#base64":                     "base64",
}

// algName returns a safe, short description of an algorithm URI taken from
// the input: its name if it is a known one, "unknown" otherwise.
func algName(uri string) string {
	switch uri {
	case AlgExcC14N:
		return "exclusive c14n"
	case AlgEnveloped:
		return "enveloped-signature"
	case AlgSHA256:
		return "SHA-256"
	case AlgSHA384:
		return "SHA-384"
	case AlgSHA512:
		return "SHA-512"
	case AlgRSASHA256:
		return "RSA-SHA256"
	case AlgRSASHA384:
		return "RSA-SHA384"
	case AlgRSASHA512:
		return "RSA-SHA512"
	case AlgECDSASHA256:
		return "ECDSA-SHA256"
	case AlgECDSASHA384:
		return "ECDSA-SHA384"
	case AlgECDSASHA512:
		return "ECDSA-SHA512"
	}
	if n, ok := knownRefused[uri]; ok {
		return n
	}
	if uri == "" {
		return "none"
	}
	return "unknown"
}
