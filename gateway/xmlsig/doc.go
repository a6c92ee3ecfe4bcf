// Package xmlsig signs and verifies the gateway's small signed XML documents
// (the bundle manifest, root {urn:rehabgw:manifest:v1}Manifest, and the
// gateway's countersignature, root {urn:rehabgw:acceptance:v1}Acceptance)
// with enveloped XML-DSig under a strict policy.
//
// # Why a policy in front of goxmldsig
//
// goxmldsig (v1.6.1) checks cryptography, not policy (GUIDE.md, "Hard facts
// that shape the design"): it accepts SHA-1, digests only the first Reference
// that matches the root and ignores the others, finds a Signature anywhere in
// the tree, ignores ds:Object and anything else in KeyInfo, and trusts a
// KeyInfo certificate that byte-matches its store without building a chain.
// Each of those is a known way to make a verifier approve one thing while the
// application reads another (XML Signature Wrapping, XSW). Verify therefore
// decides everything about the document's form itself, and only then hands it
// to goxmldsig for the digest and signature check, with a certificate store
// that holds nothing but the already chain-validated leaf.
//
// # The rules, in the order Verify applies them
//
//  1. xmlsafe.Check with xmlsafe.Manifest limits (zero Policy.Limits fields
//     take the Manifest values): no DOCTYPE (so no XXE and no entity
//     expansion), no comments (a comment inside a signed value is invisible
//     to exclusive c14n but splits the text a reader sees), no processing
//     instructions, size, depth, element and attribute limits. The element
//     limit (900) keeps every accepted document inside goxmldsig's fixed
//     traversal budget of 1,000 elements. Codes are xmlsafe's own (xml.*).
//  2. Parse with etree and resolve every namespace prefix; undeclared
//     prefixes and rebinding xml/xmlns are refused, because goxmldsig refuses
//     them too and both must see the same tree (sig.policy).
//  3. The root is Policy.Root, namespace and local name (sig.policy): a
//     signed Acceptance is never accepted where a Manifest is expected.
//  4. The root has exactly one ID attribute, unprefixed, of the form
//     [A-Za-z_][A-Za-z0-9_.-]*, and no other attribute anywhere (ID, Id or id,
//     any prefix) carries the same value (sig.policy). Duplicate IDs are the
//     lever of most wrapping attacks; a prefixed x:ID would be the one
//     etree's SelectAttr, and so goxmldsig, picks.
//  5. Exactly one ds:Signature in the whole document (namespace-resolved, any
//     prefix), a direct child of the root and its last element child
//     (sig.missing when there is none, sig.policy otherwise), and no other
//     XML-DSig element outside it. This is the only shape an enveloped
//     signature over the root needs; everything else is room for a wrapper.
//  6. SignedInfo is exactly CanonicalizationMethod, SignatureMethod and one
//     Reference. Canonicalization is exclusive c14n without comments; the
//     SignatureMethod is RSA or ECDSA with SHA-256, -384 or -512 and must
//     match the key type (sig.algorithm for SHA-1, HMAC, c14n variants and
//     anything unknown). One Reference only (sig.policy), because goxmldsig
//     verifies one and ignores the rest.
//  7. The Reference's URI is "#" + the root's ID (an empty URI, an XPointer or
//     another element's ID is sig.policy): what is digested is the root and
//     nothing else. Its Transforms are exactly enveloped-signature then
//     exclusive c14n (optionally with ec:InclusiveNamespaces); XPath, XSLT and
//     the rest are sig.policy. DigestMethod is SHA-256/384/512 (sig.algorithm).
//  8. SignatureValue holds base64 only; KeyInfo is present once and holds
//     exactly one X509Data with one to eight X509Certificate elements and
//     nothing else; ds:Object is refused (sig.policy). Attributes other than
//     the defined ones (Algorithm, URI, PrefixList) are refused on every
//     XML-DSig element, so that a prefixed duplicate cannot be read one way
//     here and another way by encoding/xml inside goxmldsig.
//  9. The first certificate is the leaf. RSA below 2048 bits or ECDSA below
//     P-256 is sig.weak_key. Validity against Policy.Now gives sig.expired or
//     sig.not_yet_valid; a CA certificate or one whose key usage excludes
//     digital signatures is sig.untrusted; then leaf.Verify with Policy.Roots,
//     Policy.Intermediates plus the other KeyInfo certificates, and
//     Policy.KeyUsages (default any): failure is sig.untrusted. An attacker's
//     self-signed certificate with a trusted subject therefore gets nowhere.
//  10. goxmldsig's ValidationContext.Validate with a store holding only that
//     leaf, its clock set to Policy.Now and IdAttribute "ID": a digest or
//     signature mismatch is sig.invalid. Verified.Element is the element it
//     returns, re-parsed from the exact canonical bytes that were digested;
//     callers read business data only from it.
//
// Error messages are fixed texts: they never quote document content, an
// algorithm URI from the input or a certificate subject. Causes from x509 and
// goxmldsig are kept (for logs) only after errs.Redact, and x509 chain errors,
// which can name an attacker-supplied certificate, are reduced to their kind.
//
// # ECDSA
//
// XML-DSig (RFC 4051) encodes an ECDSA SignatureValue as r||s. goxmldsig
// v1.6.1 writes the ASN.1 DER that crypto.Signer returns and verifies with
// x509.CheckSignature, which wants DER: its ECDSA signatures fail in xmlsec1,
// and it rejects xmlsec1's. Signer therefore refuses ECDSA keys
// (sig.unsupported_key) and signs with RSA only; Verify converts a standard
// r||s value to DER before calling goxmldsig (SignatureValue is covered by no
// digest, so this changes nothing that is signed) and refuses DER-encoded
// values. TestGoxmldsigECDSAIsDER pins this and fails when it changes.
//
// # Interoperability
//
// Signatures made by Signer verify with
//
//	xmlsec1 --verify --enabled-key-data x509 --trusted-pem CA.pem \
//	    --id-attr:ID urn:rehabgw:manifest:v1:Manifest FILE
//
// (xmlsec1 splits the --id-attr value at the last colon, so namespaces that
// contain colons work), and documents signed by xmlsec1 --sign with an
// exc-c14n, rsa-sha256 or ecdsa-sha256, enveloped template verify here; see
// xmlsec1_test.go. Without --enabled-key-data x509 xmlsec1 trusts an
// embedded key: always pass it.
package xmlsig
