// Package bench holds the gateway's end-to-end benchmarks (in bench_test.go)
// and what they need: typical and large bundles, the multipart body gwctl
// sends, and reading a process's memory from /proc.
//
// The figures, and the goals they are compared with, are printed by
// `make bench` (internal/benchreport). Nothing here asserts a timing.
package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/bundle/example"
	"github.com/rehabgw/rehabgw/gateway/bundle/sample"
)

// Bundle is a bundle whose parts are fixed and whose manifest is made
// afresh, with a new bundle ID, for every push (the gateway short-circuits
// an identical resend, so a benchmark must never push the same ID twice).
type Bundle struct {
	// Manifest is the template: every field but BundleID and ID, with the
	// part entries (sizes and SHA-256) of the parts below.
	Manifest *bundle.Manifest
	// Open opens a part's bytes by part ID.
	Open func(id string) (io.ReadCloser, error)
}

// Typical sizes (see Typical).
const (
	// TypicalWeeks is how many weekly benefit periods the forberedende del
	// lists (its Forsoergelseshistorik, an extract from the benefit
	// systems): almost four years, back to before the sick leave.
	TypicalWeeks = 200
	// TypicalJournalRefs is how many journal notes the resumé lists as
	// material (one every other day, most recent first).
	TypicalJournalRefs = 160
	// TypicalAttachment is the size of the scanned attachment's image data.
	TypicalAttachment = 1 << 20
	// LargeAttachment is the size of the large attachment's image data.
	LargeAttachment = 200 << 20
)

// BilagID is the part ID of the scanned attachment: the ID the sample
// documents already refer to (sample.IDScanning), so the references stay
// valid.
const BilagID = sample.IDScanning

// Typical builds the typical bundle of the benchmarks, from kommune-101 (sign
// it with Sign): the forberedelse example with its three XML documents
// (manifest, forberedende del, resumé) grown to about 100 KB together by
// more entries of the kinds a real case has, its LÆ 265 PDF, and a scanned
// attachment (kind bilag) of 1 MiB of image data. The documents are the
// sample generator's own (example.Build with Large), with the repeated
// entries cut down to TypicalWeeks and TypicalJournalRefs, so they stay
// schema-valid; the 20 MiB attachment of Large is replaced by the 1 MiB one
// under the same part ID. All parts are held in memory.
func Typical(now time.Time) (*Bundle, error) {
	m, src, err := example.Build(exampleOptions(now))
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	for _, ps := range src {
		if ps.ID == BilagID {
			var buf bytes.Buffer
			if _, err := WritePDF(&buf, TypicalAttachment, "typical"); err != nil {
				return nil, err
			}
			data[ps.ID] = buf.Bytes()
			continue
		}
		var buf bytes.Buffer
		if err := ps.Write(&buf); err != nil {
			return nil, fmt.Errorf("part %s: %w", ps.ID, err)
		}
		b := buf.Bytes()
		switch ps.ID {
		case sample.IDForberedendeDel:
			b, err = keepLast(b, "Forsoergelseshistorik", "Forsoergelsesperiode", TypicalWeeks, nil)
		case sample.IDResume:
			// The journal references are the Bilag entries without a Del.
			b, err = keepLast(b, "", "Bilag", TypicalJournalRefs, func(e *etree.Element) bool {
				return e.SelectElement("Del") == nil && strings.Contains(e.SelectElement("Titel").Text(), "(nr. ")
			})
		}
		if err != nil {
			return nil, fmt.Errorf("part %s: %w", ps.ID, err)
		}
		data[ps.ID] = b
	}
	m.Parts = m.Parts[:0]
	for _, ps := range src {
		b := data[ps.ID]
		sum := sha256.Sum256(b)
		m.Parts = append(m.Parts, bundle.Part{ID: ps.ID, Kind: ps.Kind, MediaType: ps.MediaType, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	return &Bundle{Manifest: m, Open: func(id string) (io.ReadCloser, error) {
		b, ok := data[id]
		if !ok {
			return nil, fmt.Errorf("no part %s", id)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}}, nil
}

// Large builds a bundle like Typical whose attachment has 200 MiB of image
// data, written once into dir (a generator streams it to the file, never
// through memory) and streamed from there at every push.
func Large(now time.Time, dir string) (*Bundle, error) {
	b, err := Typical(now)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, BilagID)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := WritePDF(io.MultiWriter(f, h), LargeAttachment, "large")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	for i, p := range b.Manifest.Parts {
		if p.ID == BilagID {
			b.Manifest.Parts[i].Size = n
			b.Manifest.Parts[i].SHA256 = hex.EncodeToString(h.Sum(nil))
		}
	}
	inMemory := b.Open
	b.Open = func(id string) (io.ReadCloser, error) {
		if id == BilagID {
			return os.Open(path)
		}
		return inMemory(id)
	}
	return b, nil
}

func exampleOptions(now time.Time) example.Options {
	now = now.Truncate(time.Second)
	return example.Options{
		Purpose:  bundle.Forberedelse,
		Sender:   "kommune-101",
		Large:    true, // trimmed to typical sizes by Typical
		Created:  now,
		Meeting:  now.AddDate(0, 0, 14), // as `gwctl example` does
		BundleID: uuid.NewString(),
	}
}

// Sign returns a signed manifest for the bundle under a new bundle ID.
func (b *Bundle) Sign(sign func([]byte) ([]byte, error)) (manifest []byte, bundleID string, err error) {
	m := *b.Manifest
	m.BundleID = uuid.NewString()
	m.ID = "M-" + m.BundleID
	doc, err := m.Document()
	if err != nil {
		return nil, "", err
	}
	signed, err := sign(doc)
	if err != nil {
		return nil, "", err
	}
	return signed, m.BundleID, nil
}

// PartBytes is the sum of the part sizes.
func (b *Bundle) PartBytes() int64 { return b.Manifest.TotalSize() }

// XMLBytes is the size of the XML documents, the manifest (signed) included.
func (b *Bundle) XMLBytes(manifest []byte) int64 {
	n := int64(len(manifest))
	for _, p := range b.Manifest.Parts {
		if p.Kind.Structured() {
			n += p.Size
		}
	}
	return n
}

// keepLast keeps only the last n children named child (and matching keep,
// when not nil) of the element named parent (the root when ""), and
// re-serialises the document as the sample generator does.
func keepLast(doc []byte, parent, child string, n int, keep func(*etree.Element) bool) ([]byte, error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, err
	}
	p := d.Root()
	if parent != "" {
		if p = p.SelectElement(parent); p == nil {
			return nil, fmt.Errorf("no element %s", parent)
		}
	}
	var matching []*etree.Element
	for _, c := range p.SelectElements(child) {
		if keep == nil || keep(c) {
			matching = append(matching, c)
		}
	}
	if len(matching) < n {
		return nil, fmt.Errorf("only %d %s entries, want %d", len(matching), child, n)
	}
	for _, c := range matching[:len(matching)-n] {
		p.RemoveChild(c)
	}
	d.WriteSettings.CanonicalText = true
	d.WriteSettings.CanonicalAttrVal = true
	d.Indent(2)
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		return nil, err
	}
	return append(bytes.TrimRight(buf.Bytes(), "\n"), '\n'), nil
}
