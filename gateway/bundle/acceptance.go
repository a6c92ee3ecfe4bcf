package bundle

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

// AcceptanceLimits bound an acceptance document: the manifest limit plus its
// base64 expansion.
var AcceptanceLimits = xmlsafe.Limits{MaxBytes: 512 << 10, MaxDepth: 8, MaxElements: 900, MaxAttributes: 8, MaxNameLen: 128}

// Acceptance is the gateway's countersignature of an accepted bundle, and
// the sender's receipt (schema schemas/acceptance-v1.xsd).
type Acceptance struct {
	ID             string
	BundleID       string
	CaseID         string
	Purpose        Purpose
	Received       time.Time
	Gateway        string // the gateway's certificate identity
	Sender         AcceptedSender
	ManifestSHA256 string
	Parts          []PartDigest
	SignedManifest []byte // the sender's signed manifest, byte for byte
}

// AcceptedSender is who sent the bundle, as the gateway established it.
type AcceptedSender struct {
	Organisation      string
	Identity          string // CVR:...-UID:... of the signing certificate
	CertificateSHA256 string
}

// PartDigest is a part's size and SHA-256 as the gateway received it.
type PartDigest struct {
	ID     string
	Size   int64
	SHA256 string
}

// NewAcceptance describes the acceptance of a verified bundle.
func NewAcceptance(signedManifest []byte, m *Manifest, signer *x509.Certificate, gateway string, received time.Time) (*Acceptance, error) {
	id, err := certs.IdentityOf(signer)
	if err != nil {
		return nil, err
	}
	certSum := sha256.Sum256(signer.Raw)
	manSum := sha256.Sum256(signedManifest)
	a := &Acceptance{
		ID:             "A-" + m.BundleID,
		BundleID:       m.BundleID,
		CaseID:         m.CaseID,
		Purpose:        m.Purpose,
		Received:       received.UTC().Truncate(time.Millisecond),
		Gateway:        gateway,
		Sender:         AcceptedSender{Organisation: m.Sender.Organisation, Identity: id.String(), CertificateSHA256: hex.EncodeToString(certSum[:])},
		ManifestSHA256: hex.EncodeToString(manSum[:]),
		SignedManifest: bytes.Clone(signedManifest),
	}
	for _, p := range m.Parts {
		a.Parts = append(a.Parts, PartDigest{ID: p.ID, Size: p.Size, SHA256: p.SHA256})
	}
	return a, nil
}

// Document renders the unsigned acceptance document.
func (a *Acceptance) Document() ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("Acceptance")
	root.CreateAttr("xmlns", AcceptanceNS)
	root.CreateAttr("ID", a.ID)
	root.CreateElement("BundleID").SetText(a.BundleID)
	root.CreateElement("CaseID").SetText(a.CaseID)
	root.CreateElement("Purpose").SetText(string(a.Purpose))
	root.CreateElement("Received").SetText(a.Received.Format(time.RFC3339Nano))
	root.CreateElement("Gateway").SetText(a.Gateway)
	s := root.CreateElement("Sender")
	s.CreateElement("Organisation").SetText(a.Sender.Organisation)
	s.CreateElement("Identity").SetText(a.Sender.Identity)
	s.CreateElement("CertificateSHA256").SetText(a.Sender.CertificateSHA256)
	root.CreateElement("ManifestSHA256").SetText(a.ManifestSHA256)
	ps := root.CreateElement("Parts")
	for _, p := range a.Parts {
		pe := ps.CreateElement("Part")
		pe.CreateAttr("id", p.ID)
		pe.CreateAttr("size", strconv.FormatInt(p.Size, 10))
		pe.CreateAttr("sha256", p.SHA256)
	}
	root.CreateElement("SignedManifest").SetText(base64.StdEncoding.EncodeToString(a.SignedManifest))
	doc.Indent(2)
	return doc.WriteToBytes()
}

// Countersign renders and signs the acceptance with the gateway's signer.
func Countersign(s *xmlsig.Signer, a *Acceptance) ([]byte, error) {
	doc, err := a.Document()
	if err != nil {
		return nil, err
	}
	return s.SignWithLimits(doc, AcceptanceLimits)
}

// VerifyAcceptance checks a countersigned bundle: the gateway's signature on
// the acceptance (against gateway trust, and the signer must be the
// registry's operator organisation), then the sender's signed manifest it
// carries (its digest, its signature against sender trust, rules, identity),
// and that both agree on the bundle, the sender and every part.
func (v *Validator) VerifyAcceptance(data []byte, gateway, sender Trust) (*Acceptance, *Manifest, error) {
	fail := func(code, format string, args ...any) (*Acceptance, *Manifest, error) {
		return nil, nil, errs.E(errs.BadSignature, code, format, args...).InPart(AcceptanceFile)
	}
	if _, err := xmlsafe.Check(data, AcceptanceLimits); err != nil {
		return nil, nil, inPart(err, AcceptanceFile)
	}
	if err := v.acceptance.Validate(data); err != nil {
		return nil, nil, inPart(err, AcceptanceFile)
	}
	ver, err := xmlsig.Verify(data, xmlsig.Policy{
		Roots: gateway.Roots, Intermediates: gateway.Intermediates, Now: v.now,
		Limits: AcceptanceLimits, Root: xml.Name{Space: AcceptanceNS, Local: "Acceptance"},
	})
	if err != nil {
		return nil, nil, inPart(err, AcceptanceFile)
	}
	gid, err := certs.IdentityOf(ver.Certificate)
	if err != nil {
		return fail("sig.identity", "the gateway's certificate carries no organisation identity")
	}
	if org, ok := v.reg.ByCVR(gid.CVR); !ok || org.Kind != registry.KindOperator {
		return fail("sig.identity_mismatch", "the acceptance is not signed by the gateway operator")
	}
	a, err := parseAcceptance(ver.Element)
	if err != nil {
		return nil, nil, err
	}
	if a.Gateway != gid.String() {
		return fail("acceptance.mismatch", "the acceptance names another gateway than the one that signed it")
	}
	sum := sha256.Sum256(a.SignedManifest)
	if hex.EncodeToString(sum[:]) != a.ManifestSHA256 {
		return fail("acceptance.mismatch", "the carried manifest does not match ManifestSHA256")
	}
	// The sender's signature is judged at the time the gateway received
	// the bundle (which the gateway vouches for with its own, current,
	// signature): a bundle accepted before the sender's certificate expired
	// stays verifiable afterwards.
	atReceipt := *v
	atReceipt.now = func() time.Time { return a.Received }
	m, mver, err := atReceipt.VerifyManifest(a.SignedManifest, sender)
	if err != nil {
		return nil, nil, err
	}
	certSum := sha256.Sum256(mver.Certificate.Raw)
	switch {
	case a.BundleID != m.BundleID || a.CaseID != m.CaseID || a.Purpose != m.Purpose:
		return fail("acceptance.mismatch", "the acceptance and the manifest name different bundles")
	case a.Sender.Organisation != m.Sender.Organisation || a.Sender.CertificateSHA256 != hex.EncodeToString(certSum[:]):
		return fail("acceptance.mismatch", "the acceptance and the manifest name different senders")
	case len(a.Parts) != len(m.Parts):
		return fail("acceptance.mismatch", "the acceptance and the manifest list different parts")
	}
	for i, p := range m.Parts {
		if q := a.Parts[i]; q.ID != p.ID || q.Size != p.Size || q.SHA256 != p.SHA256 {
			return fail("acceptance.mismatch", "the acceptance and the manifest differ on part %s", clip(p.ID))
		}
	}
	return a, m, nil
}

func parseAcceptance(root *etree.Element) (*Acceptance, error) {
	bad := func(path string) (*Acceptance, error) {
		return nil, errs.E(errs.Invalid, "acceptance.structure", "malformed acceptance").At(0, path).InPart(AcceptanceFile)
	}
	if root.Tag != "Acceptance" || root.NamespaceURI() != AcceptanceNS {
		return bad("/")
	}
	a := &Acceptance{ID: root.SelectAttrValue("ID", "")}
	a.BundleID = childText(root, "BundleID")
	a.CaseID = childText(root, "CaseID")
	a.Purpose = Purpose(childText(root, "Purpose"))
	a.Gateway = childText(root, "Gateway")
	a.Sender = AcceptedSender{
		Organisation:      childText(root, "Sender", "Organisation"),
		Identity:          childText(root, "Sender", "Identity"),
		CertificateSHA256: childText(root, "Sender", "CertificateSHA256"),
	}
	a.ManifestSHA256 = childText(root, "ManifestSHA256")
	var err error
	if a.Received, err = time.Parse(time.RFC3339Nano, childText(root, "Received")); err != nil {
		return bad("/Acceptance/Received")
	}
	if a.SignedManifest, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(childText(root, "SignedManifest")), "")); err != nil {
		return bad("/Acceptance/SignedManifest")
	}
	for _, c := range root.ChildElements() {
		if c.Tag != "Parts" {
			continue
		}
		for _, pe := range c.ChildElements() {
			size, err := strconv.ParseInt(pe.SelectAttrValue("size", ""), 10, 64)
			if err != nil {
				return bad("/Acceptance/Parts/Part/@size")
			}
			a.Parts = append(a.Parts, PartDigest{ID: pe.SelectAttrValue("id", ""), Size: size, SHA256: pe.SelectAttrValue("sha256", "")})
		}
	}
	return a, nil
}
