package sample

import (
	"bytes"
	"time"

	"github.com/beevik/etree"
)

// document is an XML document under construction: an XML declaration and
// one root element in the document type's default namespace. No comments,
// DOCTYPE or other processing instructions are ever added.
type document struct {
	doc  *etree.Document
	root node
}

// node is an element under construction.
type node struct{ e *etree.Element }

func newDocument(root, namespace string) *document {
	d := etree.NewDocument()
	d.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	r := d.CreateElement(root)
	r.CreateAttr("xmlns", namespace)
	r.CreateAttr("version", "1")
	return &document{doc: d, root: node{r}}
}

// bytes serialises the document: UTF-8, indented by two spaces, text
// escaped canonically (&, < and > as references, quotes as they are), and a
// final newline.
func (d *document) bytes() ([]byte, error) {
	d.doc.WriteSettings.CanonicalText = true
	d.doc.WriteSettings.CanonicalAttrVal = true
	d.doc.Indent(2)
	var buf bytes.Buffer
	if _, err := d.doc.WriteTo(&buf); err != nil {
		return nil, err
	}
	b := bytes.TrimRight(buf.Bytes(), "\n")
	return append(b, '\n'), nil
}

// el adds a child element and returns it.
func (n node) el(tag string) node { return node{n.e.CreateElement(tag)} }

// text adds a child element holding text and returns n, for chaining.
func (n node) text(tag, s string) node {
	n.e.CreateElement(tag).SetText(s)
	return n
}

// opt adds a child element holding text if s is not empty.
func (n node) opt(tag, s string) node {
	if s != "" {
		n.text(tag, s)
	}
	return n
}

// date adds a child element holding a date (YYYY-MM-DD).
func (n node) date(tag string, t time.Time) node { return n.text(tag, isoDate(t)) }

// attr sets an attribute and returns n.
func (n node) attr(name, value string) node {
	n.e.CreateAttr(name, value)
	return n
}

func isoDate(t time.Time) string { return t.Format("2006-01-02") }

// dateTime renders a time with its zone offset, to the second.
func dateTime(t time.Time) string { return t.Format("2006-01-02T15:04:05Z07:00") }
