package xmlsafe

import (
	"strings"
	"testing"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

func TestCheck(t *testing.T) {
	deep := strings.Repeat("<a>", 60) + strings.Repeat("</a>", 60)
	many := "<r>" + strings.Repeat("<e/>", 1000) + "</r>"
	var attrs strings.Builder
	attrs.WriteString("<r")
	for i := 0; i < 40; i++ {
		attrs.WriteString(" a")
		attrs.WriteString(strings.Repeat("x", i+1))
		attrs.WriteString(`="1"`)
	}
	attrs.WriteString("/>")
	lol := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`
	xxe := `<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>`

	cases := []struct {
		name string
		doc  string
		lim  Limits
		code string // "" = ok
		line int
	}{
		{name: "ok/minimal", doc: `<r/>`},
		{name: "ok/declaration", doc: `<?xml version="1.0" encoding="UTF-8"?>` + "\n<r a=\"1\">æøå</r>\n"},
		{name: "ok/declaration-lowercase-utf8", doc: `<?xml version='1.0' encoding='utf-8'?><r/>`},
		{name: "ok/cdata", doc: `<r><![CDATA[a < b]]></r>`},
		{name: "ok/same-local-name-different-namespaces", doc: `<r xmlns:a="urn:a" xmlns:b="urn:b" a:x="1" b:x="2"/>`},
		{name: "fail/empty", doc: "  \n", code: "xml.malformed"},
		{name: "fail/too-large", doc: `<r>` + strings.Repeat("x", 100) + `</r>`, lim: Limits{MaxBytes: 50}, code: "xml.too_large"},
		{name: "fail/bom", doc: "\xef\xbb\xbf<r/>", code: "xml.bom", line: 1},
		{name: "fail/latin1-bytes", doc: "<r>\n\xe6</r>", code: "xml.not_utf8", line: 2},
		{name: "fail/declared-latin1", doc: `<?xml version="1.0" encoding="ISO-8859-1"?><r/>`, code: "xml.encoding"},
		{name: "fail/doctype", doc: "<!DOCTYPE r>\n<r/>", code: "xml.doctype"},
		{name: "fail/billion-laughs", doc: lol, code: "xml.doctype"},
		{name: "fail/xxe", doc: xxe, code: "xml.doctype"},
		{name: "fail/comment", doc: "<r>\n<!-- hi --></r>", code: "xml.comment", line: 2},
		{name: "fail/comment-inside-value", doc: "<r><CPR>0101<!---->901234</CPR></r>", code: "xml.comment"},
		{name: "fail/pi", doc: `<r><?php x?></r>`, code: "xml.pi"},
		{name: "fail/pi-before-root", doc: `<?xml-stylesheet href="x"?><r/>`, code: "xml.pi"},
		{name: "fail/duplicate-attribute", doc: `<r a="1" a="2"/>`, code: "xml.duplicate_attribute"},
		{name: "fail/duplicate-attribute-via-prefixes", doc: `<r xmlns:a="urn:x" xmlns:b="urn:x" a:id="1" b:id="2"/>`, code: "xml.duplicate_attribute"},
		{name: "fail/deep", doc: deep, code: "xml.depth"},
		{name: "fail/many-elements", doc: many, lim: Limits{MaxElements: 500}, code: "xml.elements"},
		{name: "fail/attribute-flood", doc: attrs.String(), code: "xml.attributes"},
		{name: "fail/two-roots", doc: `<r/><s/>`, code: "xml.malformed"},
		{name: "fail/text-after-root", doc: `<r/>junk`, code: "xml.malformed"},
		{name: "fail/unclosed", doc: `<r><s></s>`, code: "xml.malformed"},
		{name: "fail/undefined-entity", doc: `<r>&e;</r>`, code: "xml.malformed"},
		{name: "fail/bad-char-ref", doc: `<r>&#0;</r>`, code: "xml.malformed"},
		{name: "fail/control-char", doc: "<r>\x01</r>", code: "xml.malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Check([]byte(tc.doc), tc.lim)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				if st.Elements == 0 {
					t.Fatalf("no elements counted")
				}
				return
			}
			if err == nil {
				t.Fatalf("want %s, got ok", tc.code)
			}
			if got := errs.CodeOf(err); got != tc.code {
				t.Fatalf("want code %s, got %s (%v)", tc.code, got, err)
			}
			if tc.line > 0 {
				e := errs.Flatten(err)[0]
				if e.Line != tc.line {
					t.Fatalf("want line %d, got %d (%v)", tc.line, e.Line, err)
				}
			}
		})
	}
}

func TestCheckNeverEchoesCPR(t *testing.T) {
	for _, doc := range []string{
		`<r><CPR>0101901234</r>`,
		`<r a="0101901234" a="0101901234"/>`,
		"<r>0101901234\xff</r>",
	} {
		_, err := Check([]byte(doc), Limits{})
		if err == nil {
			t.Fatalf("want error for %q", doc)
		}
		if strings.Contains(err.Error(), "0101901234") {
			t.Fatalf("CPR echoed in error: %v", err)
		}
	}
}

// A document just under the element limit passes; one element more fails.
func TestCheckElementLimitBoundary(t *testing.T) {
	doc := func(n int) []byte { return []byte("<r>" + strings.Repeat("<e a=\"1\">x</e>", n) + "</r>") }
	if _, err := Check(doc(Default.MaxElements-1), Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(doc(Default.MaxElements), Limits{}); errs.CodeOf(err) != "xml.elements" {
		t.Fatalf("want xml.elements, got %v", err)
	}
}

func BenchmarkCheck(b *testing.B) {
	doc := []byte("<r>" + strings.Repeat("<e a=\"1\">tekst med æøå</e>", 5000) + "</r>")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Check(doc, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`<r/>`, `<?xml version="1.0"?><r a="1"><s>t</s></r>`, `<!DOCTYPE r><r/>`, `<r><!--c--></r>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Check(data, Manifest)
		if err == nil && (st.Elements < 1 || st.MaxDepth > Manifest.MaxDepth) {
			t.Fatalf("accepted with stats %+v", st)
		}
		if err != nil && errs.CodeOf(err) == "internal" {
			t.Fatalf("untyped error: %v", err)
		}
	})
}
