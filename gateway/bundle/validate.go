package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
	"github.com/rehabgw/rehabgw/gateway/xsd"
	"github.com/rehabgw/rehabgw/schemas"
)

// Config configures a Validator. Zero fields take defaults.
type Config struct {
	Registry    *registry.Registry // default registry.Default()
	Limits      Limits             // default DefaultLimits
	ManifestXML xmlsafe.Limits     // default xmlsafe.Manifest
	DocumentXML xmlsafe.Limits     // default xmlsafe.Default
	Now         func() time.Time   // default time.Now
}

// Validator runs the validation pipeline. It is safe for concurrent use; make
// one per process (compiling the schemas costs a few milliseconds).
type Validator struct {
	reg         *registry.Registry
	limits      Limits
	manifestXML xmlsafe.Limits
	documentXML xmlsafe.Limits
	now         func() time.Time

	manifest   *xsd.Schema
	acceptance *xsd.Schema
	docs       map[Kind]*xsd.Schema
}

// NewValidator compiles the embedded schemas.
func NewValidator(cfg Config) (*Validator, error) {
	v := &Validator{
		reg:         cfg.Registry,
		limits:      cfg.Limits.withDefaults(),
		manifestXML: cfg.ManifestXML,
		documentXML: cfg.DocumentXML,
		now:         cfg.Now,
		docs:        map[Kind]*xsd.Schema{},
	}
	if v.reg == nil {
		v.reg = registry.Default()
	}
	if v.manifestXML == (xmlsafe.Limits{}) {
		v.manifestXML = xmlsafe.Manifest
	}
	if v.documentXML == (xmlsafe.Limits{}) {
		v.documentXML = xmlsafe.Default
	}
	if v.now == nil {
		v.now = time.Now
	}
	var err error
	if v.manifest, err = xsd.Compile(schemas.FS, "manifest-v1.xsd"); err != nil {
		return nil, fmt.Errorf("compile manifest schema: %w", err)
	}
	if v.acceptance, err = xsd.Compile(schemas.FS, "acceptance-v1.xsd"); err != nil {
		return nil, fmt.Errorf("compile acceptance schema: %w", err)
	}
	for _, k := range StructuredKinds() {
		s, err := xsd.Compile(schemas.FS, k.SchemaFile())
		if err != nil {
			return nil, fmt.Errorf("compile %s schema: %w", k, err)
		}
		v.docs[k] = s
	}
	return v, nil
}

// Registry returns the organisation registry the validator checks senders against.
func (v *Validator) Registry() *registry.Registry { return v.reg }

// Limits returns the bundle limits in force.
func (v *Validator) Limits() Limits { return v.limits }

// inPart locates every error of err in a part.
func inPart(err error, part string) error {
	if err == nil {
		return nil
	}
	var out errs.List
	for _, e := range errs.Flatten(err) {
		if e.Part == "" {
			e = e.InPart(part)
		}
		out = append(out, e)
	}
	return out.Err()
}

// CheckManifestXML applies the XML limits and the manifest schema to the raw
// manifest bytes (signed or not). It is the first step for every manifest.
func (v *Validator) CheckManifestXML(data []byte) error {
	if _, err := xmlsafe.Check(data, v.manifestXML); err != nil {
		return inPart(err, ManifestFile)
	}
	return inPart(v.manifest.Validate(data), ManifestFile)
}

// Manifest runs the offline steps on a manifest: XML limits, schema,
// reading, business rules. It does not verify the signature (see
// VerifyManifest), so its result must not be trusted for routing.
func (v *Validator) Manifest(data []byte) (*Manifest, error) {
	if err := v.CheckManifestXML(data); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, errs.Wrap(errs.Invalid, "xml.malformed", err, "manifest is not well-formed").InPart(ManifestFile)
	}
	m, err := ParseManifestElement(doc.Root())
	if err != nil {
		return nil, err
	}
	if err := CheckManifest(m, v.reg, v.limits, v.now()); err != nil {
		return m, err
	}
	return m, nil
}

// PartCheck checks one part's bytes as they stream past: it is an io.Writer
// that counts and hashes what is written, keeps structured documents (up to
// their limit) for schema validation, and reports in Finish. Tee the part's
// bytes into it on their way to storage.
type PartCheck struct {
	v    *Validator
	m    *Manifest
	p    Part
	h    hash.Hash
	n    int64
	head []byte        // first bytes, for the media-type signature
	doc  *bytes.Buffer // structured kinds only
	over bool          // more bytes than declared
}

// BeginPart starts checking part p of manifest m.
func (v *Validator) BeginPart(m *Manifest, p Part) *PartCheck {
	pc := &PartCheck{v: v, m: m, p: p, h: sha256.New()}
	if p.Kind.Structured() && p.Size <= v.limits.MaxDocBytes {
		// Grows with the bytes that actually arrive: a declared size costs
		// nothing until the sender sends it.
		pc.doc = bytes.NewBuffer(make([]byte, 0, min(p.Size, 64<<10)))
	}
	return pc
}

// Write implements io.Writer. It fails as soon as more bytes arrive than the
// manifest declares, so an oversized upload is cut short.
func (pc *PartCheck) Write(b []byte) (int, error) {
	if pc.n+int64(len(b)) > pc.p.Size {
		pc.over = true
		return 0, errs.E(errs.Invalid, "part.size_mismatch", "part is longer than the %d bytes its manifest entry declares", pc.p.Size).InPart(pc.p.ID)
	}
	pc.n += int64(len(b))
	pc.h.Write(b)
	if len(pc.head) < 16 {
		pc.head = append(pc.head, b[:min(len(b), 16-len(pc.head))]...)
	}
	if pc.doc != nil {
		pc.doc.Write(b)
	}
	return len(b), nil
}

// Finish reports every problem of the part: size, digest, media-type
// signature and, for structured kinds, XML limits, schema and the document
// rules against the manifest.
func (pc *PartCheck) Finish() error {
	p := pc.p
	if pc.over || pc.n != p.Size {
		return errs.E(errs.Invalid, "part.size_mismatch", "part has %d bytes, its manifest entry declares %d", pc.n, p.Size).InPart(p.ID)
	}
	if got := hex.EncodeToString(pc.h.Sum(nil)); got != p.SHA256 {
		return errs.E(errs.Invalid, "part.digest_mismatch", "SHA-256 of the part does not match its manifest entry").InPart(p.ID)
	}
	if !p.Kind.Structured() {
		if !mediaMatches(p.MediaType, pc.head) {
			return errs.E(errs.Invalid, "part.media_mismatch", "content does not look like %s", p.MediaType).InPart(p.ID)
		}
		return nil
	}
	if pc.doc == nil {
		return errs.E(errs.TooLarge, "rule.part_too_large", "a structured document may be at most %d bytes", pc.v.limits.MaxDocBytes).InPart(p.ID)
	}
	return inPart(pc.v.checkDocument(pc.m, p, pc.doc.Bytes()), p.ID)
}

// CheckPart reads a whole part from r and checks it.
func (v *Validator) CheckPart(m *Manifest, p Part, r io.Reader) error {
	pc := v.BeginPart(m, p)
	if _, err := io.Copy(pc, io.LimitReader(r, p.Size+1)); err != nil {
		if errs.KindOf(err) != errs.Other {
			return err
		}
		return errs.Wrap(errs.Other, "part.read", err, "reading the part failed").InPart(p.ID)
	}
	return pc.Finish()
}

// mediaMatches checks the leading bytes of binary media types, so that a
// document declared as a PDF is one as far as a cheap look can tell.
func mediaMatches(mediaType string, head []byte) bool {
	switch mediaType {
	case "application/pdf":
		return bytes.HasPrefix(head, []byte("%PDF-"))
	case "image/png":
		return bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n"))
	case "image/jpeg":
		return bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff})
	case "text/plain":
		return !bytes.ContainsRune(head, 0)
	}
	return false
}

// checkDocument validates a structured document in one streaming pass for
// the limits and the rules (docRules), then libxml2 for the kind's schema
// (chosen by the manifest's kind, so the root namespace must match it). The
// rules' findings count only for a schema-valid document.
func (v *Validator) checkDocument(m *Manifest, p Part, data []byte) error {
	rules := newDocRules(m, p.Kind)
	st, err := xmlsafe.CheckVisit(data, v.documentXML, rules)
	if err != nil {
		return err
	}
	if st.Root.Space != p.Kind.Namespace() {
		return errs.E(errs.Invalid, "document.namespace", "a %s part has root namespace %s, not %q", p.Kind, p.Kind.Namespace(), clip(st.Root.Space)).At(1, "/"+clip(st.Root.Local))
	}
	if err := v.docs[p.Kind].Validate(data); err != nil {
		return err
	}
	return rules.result(st.Root.Local)
}

// childText returns the trimmed text of the element at the path of local
// names below el, in el's namespace, or "" when absent.
func childText(el *etree.Element, path ...string) string {
	ns := el.NamespaceURI()
	for _, name := range path {
		var next *etree.Element
		for _, c := range el.ChildElements() {
			if c.Tag == name && c.NamespaceURI() == ns {
				next = c
				break
			}
		}
		if next == nil {
			return ""
		}
		el = next
	}
	return strings.TrimSpace(el.Text())
}

// ValidateParts checks every part of m, opening each with open. It returns
// all problems found, as an errs.List.
func (v *Validator) ValidateParts(m *Manifest, open func(id string) (io.ReadCloser, error)) error {
	var out errs.List
	for _, p := range m.Parts {
		r, err := open(p.ID)
		if err != nil {
			out = append(out, errs.Wrap(errs.Invalid, "part.missing", err, "part cannot be opened").InPart(p.ID))
			continue
		}
		err = v.CheckPart(m, p, r)
		r.Close()
		out = append(out, errs.Flatten(err)...)
	}
	return out.Err()
}
