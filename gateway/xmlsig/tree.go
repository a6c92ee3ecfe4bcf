package xmlsig

import (
	"encoding/xml"
	"regexp"
	"strings"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
)

// Stable error codes of this package (Kind errs.BadSignature unless noted).
const (
	CodePolicy      = "sig.policy"        // structure the policy does not allow (XSW defences and friends)
	CodeMissing     = "sig.missing"       // no ds:Signature at all
	CodeAlgorithm   = "sig.algorithm"     // an algorithm outside the allowed list
	CodeWeakKey     = "sig.weak_key"      // RSA < 2048 bits, ECDSA below P-256
	CodeExpired     = "sig.expired"       // the signer's certificate has expired
	CodeNotYetValid = "sig.not_yet_valid" // the signer's certificate is not valid yet
	CodeUntrusted   = "sig.untrusted"     // no chain to a trust anchor, or not a signing certificate
	CodeInvalid     = "sig.invalid"       // the cryptographic check failed (digest or signature value)

	CodeConfig         = "sig.config"          // Kind Other: a Policy or Signer that cannot work (programming or configuration error)
	CodeKeyMismatch    = "sig.key_mismatch"    // Kind Invalid: NewSigner key does not match the leaf
	CodeUnsupportedKey = "sig.unsupported_key" // Kind Invalid: NewSigner key type not supported
	CodeAlreadySigned  = "sig.already_signed"  // Kind Invalid: Sign on a document with a ds:Signature
	CodeNoID           = "sig.no_id"           // Kind Invalid: Sign on a root without a usable ID
	CodeInternal       = "sig.internal"        // Kind Other: Sign produced output that does not verify
)

const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

// idPattern restricts the root ID to a conservative NCName subset, so that
// "#"+ID is a bare-name XPointer every verifier resolves the same way.
var idPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)

func bad(code, format string, args ...any) *errs.Error {
	return errs.E(errs.BadSignature, code, format, args...)
}

// redacted is a third-party error whose text went through errs.Redact. It
// keeps the cause's text available for logs without carrying document
// content or certificate subjects taken from the input.
type redacted struct{ msg string }

func (r redacted) Error() string { return r.msg }

func redact(err error) error {
	if err == nil {
		return nil
	}
	return redacted{errs.Redact(err.Error())}
}

// tree is a parsed document with every element's namespace resolved.
type tree struct {
	doc  *etree.Document
	root *etree.Element
	ns   map[*etree.Element]string // element -> namespace URI
	els  []*etree.Element          // every element in document order
}

func (t *tree) name(el *etree.Element) xml.Name {
	return xml.Name{Space: t.ns[el], Local: el.Tag}
}

func (t *tree) isDS(el *etree.Element, local string) bool {
	return el.Tag == local && t.ns[el] == NamespaceDSig
}

// parse runs the pre-parse guard, then etree, then namespace resolution.
// Errors from xmlsafe are returned unchanged (their own codes and kinds).
func parse(data []byte, lim xmlsafe.Limits) (*tree, error) {
	if _, err := xmlsafe.Check(data, lim); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = lim.MaxDepth + 1
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, errs.Wrap(errs.Invalid, "xml.malformed", redact(err), "document could not be parsed")
	}
	root := doc.Root()
	if root == nil {
		return nil, errs.E(errs.Invalid, "xml.malformed", "no root element")
	}
	t := &tree{doc: doc, root: root, ns: make(map[*etree.Element]string, 64)}
	if err := t.resolve(root, map[string]string{"xml": nsXML}); err != nil {
		return nil, err
	}
	return t, nil
}

// resolve records the namespace of el and its descendants. It refuses
// undeclared prefixes (on elements and attributes) and declarations that
// rebind the reserved prefixes, which goxmldsig also refuses: the two must see
// the same tree.
func (t *tree) resolve(el *etree.Element, scope map[string]string) error {
	copied := false
	for _, a := range el.Attr {
		var prefix string
		switch {
		case a.Space == "xmlns":
			prefix = a.Key
			if prefix == "xmlns" || (prefix == "xml" && a.Value != nsXML) || (prefix != "xml" && a.Value == nsXML) || a.Value == nsXMLNS || a.Value == "" {
				return bad(CodePolicy, "namespace declaration not allowed")
			}
		case a.Space == "" && a.Key == "xmlns":
			prefix = ""
			if a.Value == nsXML || a.Value == nsXMLNS {
				return bad(CodePolicy, "default namespace declaration not allowed")
			}
		default:
			continue
		}
		if !copied {
			s := make(map[string]string, len(scope)+2)
			for k, v := range scope {
				s[k] = v
			}
			scope, copied = s, true
		}
		scope[prefix] = a.Value
	}
	uri, ok := scope[el.Space]
	if !ok && el.Space != "" {
		return bad(CodePolicy, "undeclared namespace prefix on an element")
	}
	t.ns[el] = uri
	t.els = append(t.els, el)
	for _, a := range el.Attr {
		if a.Space == "" || a.Space == "xmlns" {
			continue
		}
		if _, ok := scope[a.Space]; !ok {
			return bad(CodePolicy, "undeclared namespace prefix on an attribute")
		}
	}
	for _, c := range el.ChildElements() {
		if err := t.resolve(c, scope); err != nil {
			return err
		}
	}
	return nil
}

// rootID returns the root's ID after checking that it is the only attribute
// named ID on the root (whatever its prefix: etree's SelectAttr, which
// goxmldsig uses, matches any prefix), that it has the expected form, and that
// no other attribute called ID, Id or id anywhere carries the same value.
// Duplicate IDs are how most signature-wrapping attacks make a verifier
// digest one element while the application reads another.
func (t *tree) rootID() (string, *errs.Error) {
	var id *etree.Attr
	n := 0
	for i, a := range t.root.Attr {
		if a.Key == IDAttr {
			n++
			id = &t.root.Attr[i]
		}
	}
	if n == 0 {
		return "", bad(CodePolicy, "root element has no ID attribute")
	}
	if n > 1 || id.Space != "" {
		return "", bad(CodePolicy, "root element must have exactly one unprefixed ID attribute")
	}
	if !idPattern.MatchString(id.Value) {
		return "", bad(CodePolicy, "root ID is not of the form [A-Za-z_][A-Za-z0-9_.-]*")
	}
	for _, el := range t.els {
		for i := range el.Attr {
			a := &el.Attr[i]
			if a == id {
				continue
			}
			switch a.Key {
			case "ID", "Id", "id":
				if strings.TrimSpace(a.Value) == id.Value {
					return "", bad(CodePolicy, "another attribute carries the root ID")
				}
			}
		}
	}
	return id.Value, nil
}

// signatures returns every ds:Signature element in the document.
func (t *tree) signatures() []*etree.Element {
	var out []*etree.Element
	for _, el := range t.els {
		if t.isDS(el, "Signature") {
			out = append(out, el)
		}
	}
	return out
}

// lastChildElement returns the last element child of el, or nil.
func lastChildElement(el *etree.Element) *etree.Element {
	for i := len(el.Child) - 1; i >= 0; i-- {
		if c, ok := el.Child[i].(*etree.Element); ok {
			return c
		}
	}
	return nil
}

// hasText reports whether el has non-whitespace character data of its own.
func hasText(el *etree.Element) bool {
	for _, c := range el.Child {
		if cd, ok := c.(*etree.CharData); ok && strings.TrimSpace(cd.Data) != "" {
			return true
		}
	}
	return false
}

// text returns el's own character data with all XML whitespace removed
// (base64 content may be wrapped).
func text(el *etree.Element) string {
	var b strings.Builder
	for _, c := range el.Child {
		if cd, ok := c.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, b.String())
}
