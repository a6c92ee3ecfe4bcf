package xsd

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/internal/testenv"
	"github.com/rehabgw/rehabgw/schemas"
)

// Limits that keep the differential test deterministic and fast.
const (
	maxMutatedElements = 60  // per input document, in document order
	xmllintBatch       = 150 // files per xmllint invocation
	xmllintWorkers     = 2
)

// A variant is one document to be judged by both validators.
type variant struct {
	desc   string // input file and mutation, for failure messages
	schema string // file name under <repo>/schemas
	data   []byte
	file   string // where it was written for xmllint
}

// TestXmllintDifferential holds Validate's verdict equal to
// `xmllint --noout --schema`'s on every example and fixture and on systematic
// mutations of them: for each element (the first maxMutatedElements) remove
// it, swap it with its next sibling, insert an unknown element after it, and
// for leaves replace the text with a bad enumeration/pattern value and with a
// bad date; for each attribute remove it and give it a bad value.
func TestXmllintDifferential(t *testing.T) {
	xmllint := testenv.RequireTool(t, "xmllint")
	root := repoRoot(t)

	var inputs []string
	exampleDirs, _ := filepath.Glob(filepath.Join(root, "examples", "*"))
	for _, d := range exampleDirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			files, _ := filepath.Glob(filepath.Join(d, "*.xml"))
			inputs = append(inputs, files...)
		}
	}
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "manifest", "*.xml"))
	inputs = append(inputs, fixtures...)
	sort.Strings(inputs)

	tmp := t.TempDir()
	var variants []*variant
	skipped := map[string]bool{}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		schema := schemaFor(in, data)
		if schema == "" {
			t.Logf("skipping %s: no schema for its root namespace", in)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "schemas", schema)); err != nil {
			if !skipped[schema] {
				t.Logf("skipping inputs for %s: not there yet", schema)
				skipped[schema] = true
			}
			continue
		}
		rel := filepath.ToSlash(filepath.Join("gateway/xsd", in))
		if filepath.IsAbs(in) {
			rel, _ = filepath.Rel(root, in)
		}
		for _, m := range mutations(data) {
			variants = append(variants, &variant{desc: rel + ": " + m.desc, schema: schema, data: m.data})
		}
	}
	for i, v := range variants {
		v.file = filepath.Join(tmp, fmt.Sprintf("v%05d.xml", i))
		if err := os.WriteFile(v.file, v.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	lintValid := runXmllint(t, xmllint, root, variants)

	compiled := map[string]*Schema{}
	defer func() {
		for _, s := range compiled {
			s.Close()
		}
	}()
	var compared, invalid int
	perSchema := map[string][2]int{}
	for _, v := range variants {
		c := perSchema[v.schema]
		c[0]++
		if !lintValid[v.file] {
			c[1]++
		}
		perSchema[v.schema] = c
		s := compiled[v.schema]
		if s == nil {
			var err error
			if s, err = Compile(schemas.FS, v.schema); err != nil {
				t.Fatalf("Compile(%s): %v", v.schema, err)
			}
			compiled[v.schema] = s
		}
		err := s.Validate(v.data)
		compared++
		if !lintValid[v.file] {
			invalid++
		}
		switch {
		case lintValid[v.file] && err != nil:
			t.Errorf("%s: xmllint says valid, Validate says %v", v.desc, err)
		case !lintValid[v.file] && err == nil:
			t.Errorf("%s: xmllint says invalid, Validate says valid", v.desc)
		case err != nil:
			for _, e := range errs.Flatten(err) {
				if e.Code != "xsd.invalid" && e.Code != "xml.malformed" {
					t.Errorf("%s: unexpected code %q", v.desc, e.Code)
				}
			}
		}
	}
	pct := 0.0
	if compared > 0 {
		pct = 100 * float64(invalid) / float64(compared)
	}
	for _, name := range slices.Sorted(maps.Keys(perSchema)) {
		c := perSchema[name]
		t.Logf("%s: %d variants, %d invalid", name, c[0], c[1])
	}
	t.Logf("compared %d variants of %d inputs with xmllint; %d (%.1f%%) invalid", compared, len(inputs), invalid, pct)
	if compared < 100 {
		t.Errorf("only %d variants compared; the test is vacuous", compared)
	}
	if pct < 40 {
		t.Errorf("only %.1f%% of the variants are invalid; the mutations are too weak", pct)
	}
}

// repoRoot finds the module root (the directory holding go.mod).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// schemaFor picks the schema of an input: manifest.xml and the manifest
// fixtures use manifest-v1.xsd; anything else the schema named by its root
// namespace, urn:rehabgw:<name>:v1 → <name>-v1.xsd.
func schemaFor(file string, data []byte) string {
	if filepath.Base(file) == "manifest.xml" || filepath.Base(filepath.Dir(file)) == "manifest" {
		return "manifest-v1.xsd"
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			name, ok := strings.CutPrefix(se.Name.Space, "urn:rehabgw:")
			if !ok {
				return ""
			}
			name, ok = strings.CutSuffix(name, ":v1")
			if !ok || name == "" || strings.ContainsAny(name, ":/\\.") {
				return ""
			}
			return name + "-v1.xsd"
		}
	}
}

type mutation struct {
	desc string
	data []byte
}

// mutations returns the document itself and its systematic mutations. A
// document etree cannot parse is returned alone.
func mutations(data []byte) []mutation {
	out := []mutation{{"original", data}}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil || doc.Root() == nil {
		return out
	}
	n := len(elements(doc))
	if n > maxMutatedElements {
		n = maxMutatedElements
	}
	// apply copies the document, finds its k-th element and mutates it; f
	// returns false when the mutation does not apply.
	apply := func(k int, desc string, f func(el *etree.Element) bool) {
		c := doc.Copy()
		el := elements(c)[k]
		path := el.GetPath()
		if !f(el) {
			return
		}
		b, err := c.WriteToBytes()
		if err != nil {
			return
		}
		out = append(out, mutation{fmt.Sprintf("element %d %s: %s", k, path, desc), b})
	}
	for k := range n {
		apply(k, "remove", func(el *etree.Element) bool {
			return el.Parent() != nil && el.Parent().Parent() != nil && el.Parent().RemoveChild(el) != nil
		})
		apply(k, "swap with next sibling", func(el *etree.Element) bool {
			next := el.NextSibling()
			if next == nil {
				return false
			}
			el.Parent().InsertChildAt(el.Index(), next)
			return true
		})
		apply(k, "insert <Ukendt>x</Ukendt> after", func(el *etree.Element) bool {
			p := el.Parent()
			if p == nil || p.Parent() == nil {
				return false
			}
			u := etree.NewElement("Ukendt")
			u.SetText("x")
			p.InsertChildAt(el.Index()+1, u)
			return true
		})
		for _, text := range []string{"ugyldig-værdi", "2026-13-45"} {
			apply(k, fmt.Sprintf("text %q", text), func(el *etree.Element) bool {
				if len(el.ChildElements()) > 0 {
					return false
				}
				el.SetText(text)
				return true
			})
		}
		attrs := elements(doc)[k].Attr
		for i, a := range attrs {
			if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
				continue
			}
			apply(k, "remove attribute "+a.FullKey(), func(el *etree.Element) bool {
				el.Attr = slices.Delete(slices.Clone(el.Attr), i, i+1)
				return true
			})
			apply(k, "attribute "+a.FullKey()+`="ugyldig-værdi"`, func(el *etree.Element) bool {
				el.Attr[i].Value = "ugyldig-værdi"
				return true
			})
		}
	}
	return out
}

// elements lists a document's elements in document order.
func elements(doc *etree.Document) []*etree.Element {
	var out []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		out = append(out, e)
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(doc.Root())
	return out
}

// runXmllint judges every variant with xmllint, many files per invocation,
// and returns which files it found valid. xmllint prints "<file> validates"
// for a valid file, "<file> fails to validate" or "... validation generated
// an internal error" for an invalid one, and nothing of the kind for a file
// it cannot parse.
func runXmllint(t *testing.T, xmllint, root string, variants []*variant) map[string]bool {
	type batch struct {
		schema string
		files  []string
	}
	bySchema := map[string][]string{}
	var order []string
	for _, v := range variants {
		if _, ok := bySchema[v.schema]; !ok {
			order = append(order, v.schema)
		}
		bySchema[v.schema] = append(bySchema[v.schema], v.file)
	}
	var batches []batch
	for _, s := range order {
		files := bySchema[s]
		for len(files) > 0 {
			n := min(len(files), xmllintBatch)
			batches = append(batches, batch{s, files[:n]})
			files = files[n:]
		}
	}

	valid := map[string]bool{}
	var mu sync.Mutex
	work := make(chan batch)
	var wg sync.WaitGroup
	for range xmllintWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				args := append([]string{"--noout", "--schema", filepath.Join(root, "schemas", b.schema)}, b.files...)
				cmd := exec.Command(xmllint, args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				if _, ok := err.(*exec.ExitError); err != nil && !ok {
					t.Errorf("running xmllint: %v", err)
					continue
				}
				inBatch := map[string]bool{}
				for _, f := range b.files {
					inBatch[f] = true
				}
				verdicts := map[string]bool{}
				sc := bufio.NewScanner(&stderr)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					line := sc.Text()
					if f, ok := strings.CutSuffix(line, " validates"); ok && inBatch[f] {
						verdicts[f] = true
					} else if f, ok := strings.CutSuffix(line, " fails to validate"); ok && inBatch[f] {
						verdicts[f] = false
					} else if f, ok := strings.CutSuffix(line, " validation generated an internal error"); ok && inBatch[f] {
						verdicts[f] = false
					}
				}
				if strings.Contains(stderr.String(), "WXS schema") && strings.Contains(stderr.String(), "failed to compile") {
					t.Errorf("xmllint could not compile %s:\n%s", b.schema, stderr.String())
				}
				mu.Lock()
				for f, ok := range verdicts {
					valid[f] = ok
				}
				mu.Unlock()
			}
		}()
	}
	for _, b := range batches {
		work <- b
	}
	close(work)
	wg.Wait()
	return valid
}
