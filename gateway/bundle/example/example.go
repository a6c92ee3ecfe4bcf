// Package example assembles complete sample bundles: the fictional case
// content of package sample, a manifest for the chosen purpose and sender,
// and optionally the sender's signature. `gwctl example`, the committed
// examples/ directory and the tests all use it, so what a vendor sees in the
// documentation is exactly what the tests prove valid.
package example

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/bundle/sample"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

// namespace seeds deterministic bundle IDs.
var namespace = uuid.MustParse("6f1c2b0e-8f5e-4a57-9d8a-0c4a3e1f2b7d")

// Options choose the example. Zero fields take the defaults of
// sample.DefaultParams and of the purpose.
type Options struct {
	Purpose   bundle.Purpose
	Sender    string    // registry ID; default kommune-101 for municipal purposes, its region for replies
	Meeting   time.Time // zero: the sample's meeting date
	Created   time.Time // zero: the sample's creation time
	CPR       string    // override the citizen's CPR number
	GPGLN     string    // override the GP's GLN
	Large     bool      // 5,000+ element documents and a >= 20 MiB attachment
	BundleID  string    // default: derived deterministically from purpose and case
	InReplyTo string    // for replies; default: the deterministic ID of the example answered
	Registry  *registry.Registry
}

// ReplyBundleID is the bundle ID a reply example answers: the deterministic
// ID of the example of the purpose it replies to.
func ReplyBundleID(p bundle.Purpose, caseID string) string {
	return uuid.NewSHA1(namespace, []byte(string(p)+"|"+caseID)).String()
}

// Build returns the manifest (without parts) and the part sources.
func Build(o Options) (*bundle.Manifest, []bundle.PartSource, error) {
	spec, ok := bundle.SpecOf(o.Purpose)
	if !ok {
		return nil, nil, fmt.Errorf("unknown purpose %q (one of %v)", o.Purpose, bundle.Purposes())
	}
	reg := o.Registry
	if reg == nil {
		reg = registry.Default()
	}
	p := sample.DefaultParams(string(o.Purpose))
	p.Large = o.Large
	if !o.Meeting.IsZero() {
		p.MeetingDate = o.Meeting
	}
	if !o.Created.IsZero() {
		p.Created = o.Created
	}
	if o.CPR != "" {
		p.CPR = o.CPR
	}
	if o.GPGLN != "" {
		p.GP.GLN = o.GPGLN
	}

	municipality, ok := reg.ByID("kommune-101")
	if !ok {
		return nil, nil, fmt.Errorf("registry has no kommune-101")
	}
	senderID := o.Sender
	if senderID == "" {
		senderID = municipality.ID
		if spec.Sender == bundle.SentByRegion {
			senderID = municipality.Region
		}
	}
	sender, ok := reg.ByID(senderID)
	if !ok {
		return nil, nil, fmt.Errorf("unknown sender organisation %q", senderID)
	}
	if sender.Kind == registry.KindKommune {
		municipality = sender
	}
	region, ok := reg.RegionOf(municipality.ID)
	if !ok {
		return nil, nil, fmt.Errorf("no region for %s", municipality.ID)
	}
	p.Municipality = municipality.Name
	p.Region = region.Name

	parts, err := sample.Parts(p)
	if err != nil {
		return nil, nil, err
	}
	id := o.BundleID
	if id == "" {
		id = ReplyBundleID(o.Purpose, p.CaseID)
	}
	m := &bundle.Manifest{
		ID:       "M-" + id,
		BundleID: id,
		CaseID:   p.CaseID,
		Purpose:  o.Purpose,
		Created:  p.Created,
		Sender:   bundle.Sender{Organisation: sender.ID, CVR: sender.CVR, Unit: unitOf(sender, o.Purpose)},
		Citizen:  bundle.Citizen{CPR: p.CPR, Name: p.Name},
		GP:       &bundle.GP{SOR: p.GP.SOR, GLN: p.GP.GLN, Name: p.GP.Name},
	}
	if spec.NeedsMeeting || o.Purpose == bundle.Henvisning {
		d := p.MeetingDate
		md := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
		m.MeetingDate = &md
	}
	if spec.NeedsInReplyTo {
		m.InReplyTo = ReplyBundleID(spec.RepliesTo, p.CaseID)
	}
	if o.InReplyTo != "" {
		m.InReplyTo = o.InReplyTo
	}
	src := make([]bundle.PartSource, len(parts))
	for i, sp := range parts {
		src[i] = bundle.PartSource{ID: sp.ID, Kind: bundle.Kind(sp.Kind), MediaType: sp.MediaType, Write: sp.Write}
	}
	return m, src, nil
}

func unitOf(o *registry.Organisation, p bundle.Purpose) string {
	switch {
	case o.Kind == registry.KindKommune:
		return "Jobcenter, " + o.Name
	case p == bundle.KlinikAttest:
		if f, ok := o.Functions["klinisk-funktion"]; ok {
			return f.Name
		}
	case p == bundle.SKUdtalelse:
		if f, ok := o.Functions["sundhedskoordinator"]; ok {
			return f.Name
		}
	}
	return ""
}

// Write builds the example and writes it into dir; sign, if not nil, signs
// the manifest (for instance xmlsig.Signer.Sign).
func Write(dir string, o Options, sign func([]byte) ([]byte, error)) (*bundle.Manifest, error) {
	m, parts, err := Build(o)
	if err != nil {
		return nil, err
	}
	if err := bundle.WriteDir(dir, m, parts, sign); err != nil {
		return nil, err
	}
	return m, nil
}
