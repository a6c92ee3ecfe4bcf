package bundle

import (
	"crypto/x509"
	"encoding/xml"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

// Trust is what signatures are checked against.
type Trust struct {
	Roots         *x509.CertPool // trust anchors; required
	Intermediates *x509.CertPool // optional
}

// VerifyManifest is the full check of a signed manifest, in this order: XML
// limits, schema, signature under the strict policy (xmlsig), business
// rules on the values read from the verified element only, and the signer's
// identity against the manifest's sender. Parts are checked separately
// (BeginPart, ValidateParts).
func (v *Validator) VerifyManifest(data []byte, trust Trust) (*Manifest, *xmlsig.Verified, error) {
	if err := v.CheckManifestXML(data); err != nil {
		return nil, nil, err
	}
	ver, err := xmlsig.Verify(data, xmlsig.Policy{
		Roots:         trust.Roots,
		Intermediates: trust.Intermediates,
		Now:           v.now,
		Limits:        v.manifestXML,
		Root:          xml.Name{Space: ManifestNS, Local: "Manifest"},
	})
	if err != nil {
		return nil, nil, inPart(err, ManifestFile)
	}
	m, err := ParseManifestElement(ver.Element)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckManifest(m, v.reg, v.limits, v.now()); err != nil {
		return m, ver, err
	}
	if err := v.CheckSigner(m, ver.Certificate); err != nil {
		return m, ver, err
	}
	return m, ver, nil
}

// CheckSigner checks that the certificate that signed the manifest belongs
// to the manifest's sender: its subject serialNumber CVR:<cvr>-UID:<uid>
// maps through the registry to the sender organisation.
func (v *Validator) CheckSigner(m *Manifest, cert *x509.Certificate) error {
	id, err := certs.IdentityOf(cert)
	if err != nil {
		return errs.Wrap(errs.BadSignature, "sig.identity", err, "the signing certificate carries no organisation identity (subject serialNumber CVR:...-UID:...)").InPart(ManifestFile)
	}
	org, ok := v.reg.ByCVR(id.CVR)
	if !ok || org.ID != m.Sender.Organisation || org.CVR != m.Sender.CVR {
		return errs.E(errs.BadSignature, "sig.identity_mismatch", "the manifest was signed by CVR %s, which is not the sender organisation %s", id.CVR, clip(m.Sender.Organisation)).InPart(ManifestFile)
	}
	return nil
}
