// Package bundle is the case-bundle model: the signed manifest, its parts,
// the purposes and the rules that tie them together, and the limits that
// apply before any parsing cost.
//
// A bundle is one case exchange. Its manifest (namespace
// urn:rehabgw:manifest:v1, schema schemas/manifest-v1.xsd) names the bundle,
// the case, the purpose, the sender, the citizen, the citizen's GP, the
// meeting date and, for replies, the bundle it answers; and it binds every
// part by the SHA-256 of its exact bytes. Only the manifest is signed, so the
// signed XML stays small whatever the size of the case.
//
// On disk a bundle is a directory holding manifest.xml and one file per part,
// named by the part ID (see Dir). The validation pipeline is in validate.go,
// verification of signatures and identities in verify.go, the gateway's
// countersignature in acceptance.go.
package bundle

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// Namespaces of the bundle's own XML.
const (
	ManifestNS   = "urn:rehabgw:manifest:v1"
	AcceptanceNS = "urn:rehabgw:acceptance:v1"
	DSigNS       = "http://www.w3.org/2000/09/xmldsig#"
)

// ManifestFile is the manifest's file name in the on-disk form.
const ManifestFile = "manifest.xml"

// AcceptanceFile is the gateway's countersignature in the on-disk form of a
// fetched bundle.
const AcceptanceFile = "acceptance.xml"

// Manifest is the content of a manifest. Read it from the element that
// signature verification returns (ParseManifestElement), never from the raw
// document.
type Manifest struct {
	ID          string // the root's ID attribute, the signature's reference
	BundleID    string
	CaseID      string
	Purpose     Purpose
	Created     time.Time
	Sender      Sender
	Citizen     Citizen
	GP          *GP        // nil when absent
	MeetingDate *time.Time // date at 00:00 UTC; nil when absent
	InReplyTo   string     // "" when absent
	Parts       []Part
}

// Sender is the organisation that made and signed the bundle.
type Sender struct {
	Organisation string // registry ID, e.g. kommune-101
	CVR          string
	Unit         string
	Contact      *Contact
}

// Contact is a contact person.
type Contact struct{ Name, Role, Phone, Email string }

// Citizen is the person the case is about. CPR is personal data: never log
// it, never put it into an error message.
type Citizen struct{ CPR, Name string }

// GP is the citizen's general practitioner (egen læge), the receiver of
// MedCom copies.
type GP struct{ SOR, GLN, Name string }

// Part is one document or attachment of a bundle.
type Part struct {
	ID        string // file name on disk, Content-ID on the wire
	Kind      Kind
	MediaType string
	Size      int64
	SHA256    string // lowercase hex of the exact bytes
}

// Part returns the part with the given ID.
func (m *Manifest) Part(id string) (Part, bool) {
	for _, p := range m.Parts {
		if p.ID == id {
			return p, true
		}
	}
	return Part{}, false
}

// TotalSize is the sum of the declared part sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

// DateLayout is the layout of dates without time in bundle XML.
const DateLayout = "2006-01-02"

func invalid(code, path, format string, args ...any) *errs.Error {
	return errs.E(errs.Invalid, code, format, args...).At(0, path).InPart(ManifestFile)
}

// ParseManifestElement reads a Manifest from a manifest root element. The
// element must already have passed the XSD step (or be the element returned
// by signature verification of a document that did): this function checks
// structure only as far as it needs to read values safely, and the business
// rules are applied by (*Rules).Check.
func ParseManifestElement(root *etree.Element) (*Manifest, error) {
	if root == nil || root.Tag != "Manifest" || root.NamespaceURI() != ManifestNS {
		return nil, invalid("manifest.root", "/", "root element is not {%s}Manifest", ManifestNS)
	}
	m := &Manifest{ID: root.SelectAttrValue("ID", "")}
	if m.ID == "" {
		return nil, invalid("manifest.id", "/Manifest/@ID", "the root has no ID attribute")
	}
	var err error
	text := func(parent *etree.Element, name string, required bool, path string) (string, error) {
		var found *etree.Element
		for _, c := range parent.ChildElements() {
			if c.Tag == name && c.NamespaceURI() == ManifestNS {
				if found != nil {
					return "", invalid("manifest.structure", path, "element occurs more than once")
				}
				found = c
			}
		}
		if found == nil {
			if required {
				return "", invalid("manifest.structure", path, "required element is missing")
			}
			return "", nil
		}
		if len(found.ChildElements()) > 0 {
			return "", invalid("manifest.structure", path, "element must hold text only")
		}
		return strings.TrimSpace(found.Text()), nil
	}
	child := func(parent *etree.Element, name string) *etree.Element {
		for _, c := range parent.ChildElements() {
			if c.Tag == name && c.NamespaceURI() == ManifestNS {
				return c
			}
		}
		return nil
	}
	must := func(v string, e error) string {
		if err == nil && e != nil {
			err = e
		}
		return v
	}
	m.BundleID = must(text(root, "BundleID", true, "/Manifest/BundleID"))
	m.CaseID = must(text(root, "CaseID", true, "/Manifest/CaseID"))
	m.Purpose = Purpose(must(text(root, "Purpose", true, "/Manifest/Purpose")))
	created := must(text(root, "Created", true, "/Manifest/Created"))
	if err != nil {
		return nil, err
	}
	if m.Created, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return nil, invalid("manifest.date", "/Manifest/Created", "not a date-time with time zone")
	}
	s := child(root, "Sender")
	if s == nil {
		return nil, invalid("manifest.structure", "/Manifest/Sender", "required element is missing")
	}
	m.Sender.Organisation = must(text(s, "Organisation", true, "/Manifest/Sender/Organisation"))
	m.Sender.CVR = must(text(s, "CVR", true, "/Manifest/Sender/CVR"))
	m.Sender.Unit = must(text(s, "Unit", false, "/Manifest/Sender/Unit"))
	if cp := child(s, "ContactPerson"); cp != nil {
		m.Sender.Contact = &Contact{
			Name:  must(text(cp, "Name", true, "/Manifest/Sender/ContactPerson/Name")),
			Role:  must(text(cp, "Role", false, "/Manifest/Sender/ContactPerson/Role")),
			Phone: must(text(cp, "Phone", false, "/Manifest/Sender/ContactPerson/Phone")),
			Email: must(text(cp, "Email", false, "/Manifest/Sender/ContactPerson/Email")),
		}
	}
	c := child(root, "Citizen")
	if c == nil {
		return nil, invalid("manifest.structure", "/Manifest/Citizen", "required element is missing")
	}
	m.Citizen.CPR = must(text(c, "CPR", true, "/Manifest/Citizen/CPR"))
	m.Citizen.Name = must(text(c, "Name", true, "/Manifest/Citizen/Name"))
	if g := child(root, "GeneralPractitioner"); g != nil {
		m.GP = &GP{
			SOR:  must(text(g, "SOR", true, "/Manifest/GeneralPractitioner/SOR")),
			GLN:  must(text(g, "GLN", true, "/Manifest/GeneralPractitioner/GLN")),
			Name: must(text(g, "Name", true, "/Manifest/GeneralPractitioner/Name")),
		}
	}
	meeting := must(text(root, "MeetingDate", false, "/Manifest/MeetingDate"))
	m.InReplyTo = must(text(root, "InReplyTo", false, "/Manifest/InReplyTo"))
	if err != nil {
		return nil, err
	}
	if meeting != "" {
		d, perr := time.Parse(DateLayout, meeting)
		if perr != nil {
			return nil, invalid("manifest.date", "/Manifest/MeetingDate", "not a date (YYYY-MM-DD)")
		}
		m.MeetingDate = &d
	}
	parts := child(root, "Parts")
	if parts == nil {
		return nil, invalid("manifest.structure", "/Manifest/Parts", "required element is missing")
	}
	for i, pe := range parts.ChildElements() {
		path := fmt.Sprintf("/Manifest/Parts/Part[%d]", i+1)
		if pe.Tag != "Part" || pe.NamespaceURI() != ManifestNS {
			return nil, invalid("manifest.structure", path, "unexpected element in Parts")
		}
		size, perr := strconv.ParseInt(pe.SelectAttrValue("size", ""), 10, 64)
		if perr != nil || size < 0 {
			return nil, invalid("manifest.structure", path+"/@size", "size is not a non-negative integer")
		}
		m.Parts = append(m.Parts, Part{
			ID:        pe.SelectAttrValue("id", ""),
			Kind:      Kind(pe.SelectAttrValue("kind", "")),
			MediaType: pe.SelectAttrValue("mediaType", ""),
			Size:      size,
			SHA256:    pe.SelectAttrValue("sha256", ""),
		})
	}
	return m, nil
}

// Document renders the manifest as an unsigned XML document (UTF-8, with
// declaration, indented). Sign it with xmlsig.Signer.
func (m *Manifest) Document() ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("Manifest")
	root.CreateAttr("xmlns", ManifestNS)
	root.CreateAttr("ID", m.ID)
	root.CreateElement("BundleID").SetText(m.BundleID)
	root.CreateElement("CaseID").SetText(m.CaseID)
	root.CreateElement("Purpose").SetText(string(m.Purpose))
	root.CreateElement("Created").SetText(m.Created.Format(time.RFC3339))
	s := root.CreateElement("Sender")
	s.CreateElement("Organisation").SetText(m.Sender.Organisation)
	s.CreateElement("CVR").SetText(m.Sender.CVR)
	if m.Sender.Unit != "" {
		s.CreateElement("Unit").SetText(m.Sender.Unit)
	}
	if c := m.Sender.Contact; c != nil {
		ce := s.CreateElement("ContactPerson")
		ce.CreateElement("Name").SetText(c.Name)
		for _, kv := range [][2]string{{"Role", c.Role}, {"Phone", c.Phone}, {"Email", c.Email}} {
			if kv[1] != "" {
				ce.CreateElement(kv[0]).SetText(kv[1])
			}
		}
	}
	c := root.CreateElement("Citizen")
	c.CreateElement("CPR").SetText(m.Citizen.CPR)
	c.CreateElement("Name").SetText(m.Citizen.Name)
	if g := m.GP; g != nil {
		ge := root.CreateElement("GeneralPractitioner")
		ge.CreateElement("SOR").SetText(g.SOR)
		ge.CreateElement("GLN").SetText(g.GLN)
		ge.CreateElement("Name").SetText(g.Name)
	}
	if m.MeetingDate != nil {
		root.CreateElement("MeetingDate").SetText(m.MeetingDate.Format(DateLayout))
	}
	if m.InReplyTo != "" {
		root.CreateElement("InReplyTo").SetText(m.InReplyTo)
	}
	ps := root.CreateElement("Parts")
	for _, p := range m.Parts {
		pe := ps.CreateElement("Part")
		pe.CreateAttr("id", p.ID)
		pe.CreateAttr("kind", string(p.Kind))
		pe.CreateAttr("mediaType", p.MediaType)
		pe.CreateAttr("size", strconv.FormatInt(p.Size, 10))
		pe.CreateAttr("sha256", p.SHA256)
	}
	doc.Indent(2)
	return doc.WriteToBytes()
}
