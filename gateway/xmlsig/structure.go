package xmlsig

import (
	"crypto/x509"
	"encoding/base64"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// maxKeyInfoCerts bounds the certificates accepted in KeyInfo (leaf plus
// intermediates); more only costs chain-building time.
const maxKeyInfoCerts = 8

// signed is what the structural policy learned about the one signature.
type signed struct {
	rootID         string
	sig            *etree.Element // the ds:Signature
	signatureValue *etree.Element
	method         sigMethod // from SignatureMethod
	methodURI      string
	certs          []*x509.Certificate // KeyInfo certificates, leaf first
}

// checkStructure applies every rule that needs only the tree: the root's ID,
// the single Signature as the root's last element child, and the exact shape
// of SignedInfo, SignatureValue and KeyInfo. It runs before any cryptography.
func checkStructure(t *tree) (*signed, *errs.Error) {
	id, err := t.rootID()
	if err != nil {
		return nil, err
	}
	sigs := t.signatures()
	switch {
	case len(sigs) == 0:
		return nil, bad(CodeMissing, "document has no ds:Signature")
	case len(sigs) > 1:
		return nil, bad(CodePolicy, "document has %d ds:Signature elements, exactly one is allowed", len(sigs))
	}
	sig := sigs[0]
	if sig.Parent() != t.root {
		return nil, bad(CodePolicy, "ds:Signature must be a direct child of the root element")
	}
	if lastChildElement(t.root) != sig {
		return nil, bad(CodePolicy, "ds:Signature must be the last child element of the root")
	}
	// No other element in the XML-DSig namespace outside the Signature: a
	// stray ds:SignedInfo or ds:Object is never needed and only confuses.
	for _, el := range t.els {
		if t.ns[el] == NamespaceDSig && !within(el, sig) {
			return nil, bad(CodePolicy, "XML-DSig element outside ds:Signature")
		}
	}

	s := &signed{rootID: id, sig: sig}
	if e := onlyAttrs(sig); e != nil {
		return nil, e
	}
	if hasText(sig) {
		return nil, bad(CodePolicy, "text content in ds:Signature")
	}
	kids := sig.ChildElements()
	if len(kids) == 0 || !t.isDS(kids[0], "SignedInfo") {
		return nil, bad(CodePolicy, "ds:Signature must start with ds:SignedInfo")
	}
	if e := s.checkSignedInfo(t, kids[0]); e != nil {
		return nil, e
	}
	if len(kids) < 2 || !t.isDS(kids[1], "SignatureValue") {
		return nil, bad(CodePolicy, "ds:SignedInfo must be followed by ds:SignatureValue")
	}
	if e := onlyAttrs(kids[1]); e != nil {
		return nil, e
	}
	if len(kids[1].ChildElements()) != 0 || text(kids[1]) == "" {
		return nil, bad(CodePolicy, "ds:SignatureValue must hold base64 text only")
	}
	s.signatureValue = kids[1]
	if len(kids) < 3 || !t.isDS(kids[2], "KeyInfo") {
		return nil, bad(CodePolicy, "ds:Signature must have a ds:KeyInfo after ds:SignatureValue")
	}
	if len(kids) > 3 {
		return nil, bad(CodePolicy, "ds:Signature may hold only SignedInfo, SignatureValue and KeyInfo (no Object, no second KeyInfo)")
	}
	if e := s.checkKeyInfo(t, kids[2]); e != nil {
		return nil, e
	}
	return s, nil
}

func (s *signed) checkSignedInfo(t *tree, si *etree.Element) *errs.Error {
	if e := onlyAttrs(si); e != nil {
		return e
	}
	if hasText(si) {
		return bad(CodePolicy, "text content in ds:SignedInfo")
	}
	kids := si.ChildElements()
	if len(kids) < 1 || !t.isDS(kids[0], "CanonicalizationMethod") {
		return bad(CodePolicy, "ds:SignedInfo must start with ds:CanonicalizationMethod")
	}
	c14n := kids[0]
	if e := onlyAttrs(c14n, "Algorithm"); e != nil {
		return e
	}
	if alg := c14n.SelectAttrValue("Algorithm", ""); alg != AlgExcC14N {
		return bad(CodeAlgorithm, "CanonicalizationMethod %s is not allowed; use exclusive c14n without comments", algName(alg))
	}
	if len(c14n.ChildElements()) != 0 || hasText(c14n) {
		return bad(CodePolicy, "ds:CanonicalizationMethod must be empty")
	}

	if len(kids) < 2 || !t.isDS(kids[1], "SignatureMethod") {
		return bad(CodePolicy, "ds:CanonicalizationMethod must be followed by ds:SignatureMethod")
	}
	sm := kids[1]
	if e := onlyAttrs(sm, "Algorithm"); e != nil {
		return e
	}
	alg := sm.SelectAttrValue("Algorithm", "")
	m, ok := allowedSignatureMethods[alg]
	if !ok {
		return bad(CodeAlgorithm, "SignatureMethod %s is not allowed", algName(alg))
	}
	if len(sm.ChildElements()) != 0 || hasText(sm) {
		return bad(CodePolicy, "ds:SignatureMethod must be empty")
	}
	s.method, s.methodURI = m, alg

	refs := kids[2:]
	for _, r := range refs {
		if !t.isDS(r, "Reference") {
			return bad(CodePolicy, "ds:SignedInfo may hold only CanonicalizationMethod, SignatureMethod and one Reference")
		}
	}
	if len(refs) != 1 {
		return bad(CodePolicy, "ds:SignedInfo has %d ds:Reference elements, exactly one is allowed", len(refs))
	}
	return s.checkReference(t, refs[0])
}

func (s *signed) checkReference(t *tree, ref *etree.Element) *errs.Error {
	if e := onlyAttrs(ref, "URI"); e != nil {
		return e
	}
	uri := ref.SelectAttr("URI")
	if uri == nil || uri.Value == "" {
		return bad(CodePolicy, "ds:Reference must have URI=\"#<root ID>\"; an empty or missing URI is not allowed")
	}
	if uri.Value != "#"+s.rootID {
		return bad(CodePolicy, "ds:Reference does not point at the root element's ID")
	}
	if hasText(ref) {
		return bad(CodePolicy, "text content in ds:Reference")
	}
	kids := ref.ChildElements()
	if len(kids) != 3 || !t.isDS(kids[0], "Transforms") || !t.isDS(kids[1], "DigestMethod") || !t.isDS(kids[2], "DigestValue") {
		return bad(CodePolicy, "ds:Reference must hold exactly Transforms, DigestMethod and DigestValue")
	}
	tr := kids[0]
	if e := onlyAttrs(tr); e != nil {
		return e
	}
	if hasText(tr) {
		return bad(CodePolicy, "text content in ds:Transforms")
	}
	ts := tr.ChildElements()
	if len(ts) != 2 || !t.isDS(ts[0], "Transform") || !t.isDS(ts[1], "Transform") ||
		ts[0].SelectAttrValue("Algorithm", "") != AlgEnveloped || ts[1].SelectAttrValue("Algorithm", "") != AlgExcC14N {
		return bad(CodePolicy, "ds:Transforms must be exactly enveloped-signature then exclusive c14n")
	}
	for _, x := range ts {
		if e := onlyAttrs(x, "Algorithm"); e != nil {
			return e
		}
		if hasText(x) {
			return bad(CodePolicy, "text content in ds:Transform")
		}
	}
	if len(ts[0].ChildElements()) != 0 {
		return bad(CodePolicy, "the enveloped-signature transform takes no parameters")
	}
	// exclusive c14n may carry one ec:InclusiveNamespaces PrefixList.
	if p := ts[1].ChildElements(); len(p) > 0 {
		if len(p) != 1 || p[0].Tag != "InclusiveNamespaces" || t.ns[p[0]] != NamespaceExcC14N ||
			len(p[0].ChildElements()) != 0 || hasText(p[0]) {
			return bad(CodePolicy, "the exclusive c14n transform takes only ec:InclusiveNamespaces")
		}
		if e := onlyAttrs(p[0], "PrefixList"); e != nil {
			return e
		}
	}

	dm := kids[1]
	if e := onlyAttrs(dm, "Algorithm"); e != nil {
		return e
	}
	dalg := dm.SelectAttrValue("Algorithm", "")
	h, ok := allowedDigestMethods[dalg]
	if !ok {
		return bad(CodeAlgorithm, "DigestMethod %s is not allowed", algName(dalg))
	}
	if len(dm.ChildElements()) != 0 || hasText(dm) {
		return bad(CodePolicy, "ds:DigestMethod must be empty")
	}
	dv := kids[2]
	if e := onlyAttrs(dv); e != nil {
		return e
	}
	if len(dv.ChildElements()) != 0 {
		return bad(CodePolicy, "ds:DigestValue must hold base64 text only")
	}
	if d, err := base64.StdEncoding.DecodeString(text(dv)); err != nil || len(d) != h.Size() {
		return bad(CodeInvalid, "ds:DigestValue is not a %s digest in base64", algName(dalg))
	}
	return nil
}

func (s *signed) checkKeyInfo(t *tree, ki *etree.Element) *errs.Error {
	if e := onlyAttrs(ki); e != nil {
		return e
	}
	if hasText(ki) {
		return bad(CodePolicy, "text content in ds:KeyInfo")
	}
	kids := ki.ChildElements()
	if len(kids) != 1 || !t.isDS(kids[0], "X509Data") {
		return bad(CodePolicy, "ds:KeyInfo must hold exactly one ds:X509Data")
	}
	xd := kids[0]
	if e := onlyAttrs(xd); e != nil {
		return e
	}
	if hasText(xd) {
		return bad(CodePolicy, "text content in ds:X509Data")
	}
	certs := xd.ChildElements()
	if len(certs) == 0 {
		return bad(CodePolicy, "ds:X509Data must hold at least one ds:X509Certificate")
	}
	if len(certs) > maxKeyInfoCerts {
		return bad(CodePolicy, "ds:X509Data holds more than %d certificates", maxKeyInfoCerts)
	}
	for _, c := range certs {
		if !t.isDS(c, "X509Certificate") {
			return bad(CodePolicy, "ds:X509Data may hold only ds:X509Certificate elements")
		}
		if e := onlyAttrs(c); e != nil {
			return e
		}
		if len(c.ChildElements()) != 0 {
			return bad(CodePolicy, "ds:X509Certificate must hold base64 text only")
		}
		der, err := base64.StdEncoding.DecodeString(text(c))
		if err != nil {
			return bad(CodePolicy, "ds:X509Certificate is not base64")
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			e := bad(CodePolicy, "ds:X509Certificate is not a valid X.509 certificate")
			e.Err = redact(err)
			return e
		}
		s.certs = append(s.certs, cert)
	}
	return nil
}

// onlyAttrs refuses any attribute on el other than namespace declarations
// and the listed unprefixed names. A prefixed "foo:Algorithm" next to
// "Algorithm" would otherwise be read one way here and another way by
// encoding/xml inside goxmldsig.
func onlyAttrs(el *etree.Element, allowed ...string) *errs.Error {
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		ok := false
		if a.Space == "" {
			for _, n := range allowed {
				if a.Key == n {
					ok = true
					break
				}
			}
		}
		if !ok {
			return bad(CodePolicy, "attribute not allowed on ds:%s", el.Tag)
		}
	}
	return nil
}

// within reports whether el is anc or a descendant of it.
func within(el, anc *etree.Element) bool {
	for e := el; e != nil; e = e.Parent() {
		if e == anc {
			return true
		}
	}
	return false
}
