// Package xmlsafe is the gate every XML byte from outside passes before any
// parser with a cost, a schema validator or a signature verifier sees it.
//
// Check streams the document once with encoding/xml and refuses, with a
// stable error code and the line number:
//
//   - anything larger than the byte limit, deeper than the depth limit, with
//     more elements than the element limit or more attributes on one element
//     than the attribute limit (xml.too_large, xml.depth, xml.elements,
//     xml.attributes);
//   - bytes that are not UTF-8, a byte-order mark, or an XML declaration that
//     names another encoding (xml.not_utf8, xml.bom, xml.encoding);
//   - a DOCTYPE (and so every entity and external reference), comments and
//     processing instructions other than the XML declaration (xml.doctype,
//     xml.comment, xml.pi);
//   - duplicate attributes after namespace resolution, which etree would
//     silently collapse to the last one (xml.duplicate_attribute);
//   - anything not well-formed, more than one root, or text outside the root
//     (xml.malformed).
//
// Comments are refused rather than ignored because a comment inside a signed
// value is invisible to exclusive c14n with comments stripped and can change
// what a naive reader sees; processing instructions because nothing in a
// bundle needs them.
package xmlsafe

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// Limits bounds what one XML document may contain. Zero fields take the
// values of Default.
type Limits struct {
	MaxBytes      int64 // whole document
	MaxDepth      int   // element nesting
	MaxElements   int   // elements in the document
	MaxAttributes int   // attributes (namespace declarations included) on one element
	MaxNameLen    int   // length of an element or attribute name
}

// Default suits a case document: large enough for a 5,000+ element
// forberedende del, small enough that no document can exhaust memory.
var Default = Limits{
	MaxBytes:      16 << 20,
	MaxDepth:      48,
	MaxElements:   200_000,
	MaxAttributes: 32,
	MaxNameLen:    256,
}

// Manifest suits a bundle manifest, which is small by design (goxmldsig
// gives up beyond about 1,000 elements in a signed tree).
var Manifest = Limits{
	MaxBytes:      256 << 10,
	MaxDepth:      16,
	MaxElements:   900,
	MaxAttributes: 16,
	MaxNameLen:    128,
}

// Or fills the zero (or negative) fields of l from d.
func (l Limits) Or(d Limits) Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = d.MaxAttributes
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = d.MaxNameLen
	}
	return l
}

// Stats describes a document that passed Check.
type Stats struct {
	Elements int
	MaxDepth int
	Root     xml.Name // namespace-resolved name of the root element
}

func fail(kind errs.Kind, code string, line int, format string, args ...any) error {
	return errs.E(kind, code, format, args...).At(line, "")
}

// Visitor sees the elements of a document that passes the gate, in one
// streaming pass, so callers can apply their own rules without parsing the
// document again. Names are namespace-resolved; text is the character data
// directly inside the current element (it may arrive in several pieces).
type Visitor interface {
	Start(name xml.Name, line int)
	Text(text []byte)
	End(name xml.Name)
}

// Check applies the limits and the refusals listed in the package comment.
func Check(data []byte, lim Limits) (*Stats, error) { return CheckVisit(data, lim, nil) }

// CheckVisit is Check that also feeds every element to v (nil: none). v sees
// only a prefix of a document that fails; its findings count only when
// CheckVisit returns no error.
func CheckVisit(data []byte, lim Limits, v Visitor) (*Stats, error) {
	lim = lim.Or(Default)
	if int64(len(data)) > lim.MaxBytes {
		return nil, errs.E(errs.TooLarge, "xml.too_large", "document is %d bytes, the limit is %d", len(data), lim.MaxBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errs.E(errs.Invalid, "xml.malformed", "document is empty")
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return nil, fail(errs.Invalid, "xml.bom", 1, "document starts with a byte-order mark; send UTF-8 without BOM")
	}
	if !utf8.Valid(data) {
		return nil, fail(errs.Invalid, "xml.not_utf8", lineOfInvalidUTF8(data), "document is not valid UTF-8")
	}

	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.Entity = nil // only the five predefined entities and character references
	d.CharsetReader = func(label string, _ io.Reader) (io.Reader, error) {
		return nil, errs.E(errs.Invalid, "xml.encoding", "document declares encoding %q; only UTF-8 is accepted", clip(label, 32))
	}

	st := &Stats{}
	depth := 0
	rootSeen, rootClosed := false, false
	seen := make(map[xml.Name]struct{}, 8)
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var ge *errs.Error
			if errors.As(err, &ge) {
				return nil, ge.At(line, "")
			}
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fail(errs.Invalid, "xml.malformed", se.Line, "not well-formed XML: %s", errs.Redact(se.Msg))
			}
			return nil, fail(errs.Invalid, "xml.malformed", line, "not well-formed XML")
		}
		line, _ = d.InputPos()
		switch t := tok.(type) {
		case xml.StartElement:
			if rootClosed {
				return nil, fail(errs.Invalid, "xml.malformed", line, "more than one root element")
			}
			rootSeen = true
			depth++
			st.Elements++
			if depth == 1 {
				st.Root = t.Name
			}
			if depth > st.MaxDepth {
				st.MaxDepth = depth
			}
			if depth > lim.MaxDepth {
				return nil, fail(errs.TooLarge, "xml.depth", line, "elements nested deeper than %d", lim.MaxDepth)
			}
			if st.Elements > lim.MaxElements {
				return nil, fail(errs.TooLarge, "xml.elements", line, "more than %d elements", lim.MaxElements)
			}
			if len(t.Attr) > lim.MaxAttributes {
				return nil, fail(errs.TooLarge, "xml.attributes", line, "element has %d attributes, the limit is %d", len(t.Attr), lim.MaxAttributes)
			}
			if len(t.Name.Local) > lim.MaxNameLen {
				return nil, fail(errs.TooLarge, "xml.name_length", line, "element name longer than %d", lim.MaxNameLen)
			}
			clear(seen)
			for _, a := range t.Attr {
				if len(a.Name.Local) > lim.MaxNameLen {
					return nil, fail(errs.TooLarge, "xml.name_length", line, "attribute name longer than %d", lim.MaxNameLen)
				}
				if _, dup := seen[a.Name]; dup {
					return nil, fail(errs.Invalid, "xml.duplicate_attribute", line, "duplicate attribute %q on element %q", clip(a.Name.Local, 64), clip(t.Name.Local, 64))
				}
				seen[a.Name] = struct{}{}
			}
			if v != nil {
				v.Start(t.Name, line)
			}
		case xml.EndElement:
			if v != nil {
				v.End(t.Name)
			}
			depth--
			if depth == 0 {
				rootClosed = true
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, fail(errs.Invalid, "xml.malformed", line, "text outside the root element")
			}
			if v != nil && depth > 0 {
				v.Text(t)
			}
		case xml.Comment:
			return nil, fail(errs.Invalid, "xml.comment", line, "comments are not allowed")
		case xml.ProcInst:
			if t.Target != "xml" || st.Elements > 0 {
				return nil, fail(errs.Invalid, "xml.pi", line, "processing instructions are not allowed")
			}
			if enc := declaredEncoding(t.Inst); enc != "" && !strings.EqualFold(enc, "utf-8") {
				return nil, fail(errs.Invalid, "xml.encoding", line, "document declares encoding %q; only UTF-8 is accepted", clip(enc, 32))
			}
		case xml.Directive:
			return nil, fail(errs.Invalid, "xml.doctype", line, "DOCTYPE and other declarations are not allowed")
		}
	}
	if !rootSeen {
		return nil, errs.E(errs.Invalid, "xml.malformed", "no root element")
	}
	if !rootClosed {
		return nil, errs.E(errs.Invalid, "xml.malformed", "document ends inside an element")
	}
	return st, nil
}

// declaredEncoding extracts encoding="..." from an XML declaration.
func declaredEncoding(inst []byte) string {
	s := string(inst)
	i := strings.Index(s, "encoding")
	if i < 0 {
		return ""
	}
	s = strings.TrimLeft(s[i+len("encoding"):], " \t\r\n")
	if !strings.HasPrefix(s, "=") {
		return ""
	}
	s = strings.TrimLeft(s[1:], " \t\r\n")
	if s == "" || (s[0] != '"' && s[0] != '\'') {
		return ""
	}
	q := s[0]
	if j := strings.IndexByte(s[1:], q); j >= 0 {
		return s[1 : 1+j]
	}
	return ""
}

func lineOfInvalidUTF8(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, n := utf8.DecodeRune(data)
		if r == utf8.RuneError && n <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		data = data[n:]
	}
	return line
}

// clip shortens s for inclusion in a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
