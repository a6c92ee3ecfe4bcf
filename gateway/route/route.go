// Package route decides who receives an accepted bundle, from its purpose
// and the organisation registry:
//
//   - forberedelse and indstilling go to the sundhedskoordinator of the
//     sending municipality's region (the indstilling's copy to the GP goes
//     through the MedCom adapter, not an inbox);
//   - henvisning goes to that region's klinisk funktion;
//   - a reply (sundhedskoordinator-udtalelse, klinisk-funktion-attest) goes
//     to the municipality that sent the bundle it answers, and only the
//     region of that municipality may send it, about the same citizen and
//     case.
package route

import (
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/store"
)

// Recipient is an inbox: an organisation and, for a region, one function.
type Recipient struct {
	Org      string
	Function string // registry.FunctionSundhedskoordinator, registry.FunctionKliniskFunktion, or ""
}

// Original is what routing needs to know of the bundle a reply answers.
type Original struct {
	Purpose   bundle.Purpose
	SenderOrg string
	CaseID    string
	CPR       string
}

// OriginalOf extracts the routing facts of a stored bundle.
func OriginalOf(b *store.Bundle) *Original {
	return &Original{Purpose: bundle.Purpose(b.Purpose), SenderOrg: b.SenderOrg, CaseID: b.CaseID, CPR: b.CPR}
}

func fail(kind errs.Kind, code, format string, args ...any) error {
	return errs.E(kind, code, format, args...).InPart(bundle.ManifestFile)
}

// For returns the recipients of a verified manifest. original is the bundle
// named by InReplyTo (nil when the manifest has none or it is unknown).
func For(reg *registry.Registry, m *bundle.Manifest, original *Original) ([]Recipient, error) {
	spec, ok := bundle.SpecOf(m.Purpose)
	if !ok {
		return nil, fail(errs.Invalid, "rule.purpose", "unknown purpose")
	}
	sender, ok := reg.ByID(m.Sender.Organisation)
	if !ok {
		return nil, fail(errs.Invalid, "rule.unknown_sender", "sender is not in the registry")
	}
	if spec.NeedsInReplyTo {
		return forReply(reg, m, spec, sender, original)
	}
	region, ok := reg.RegionOf(sender.ID)
	if !ok {
		return nil, fail(errs.Invalid, "route.no_region", "no region for %s", sender.ID)
	}
	switch m.Purpose {
	case bundle.Forberedelse, bundle.Indstilling:
		return []Recipient{{Org: region.ID, Function: registry.FunctionSundhedskoordinator}}, nil
	case bundle.Henvisning:
		return []Recipient{{Org: region.ID, Function: registry.FunctionKliniskFunktion}}, nil
	}
	return nil, fail(errs.Invalid, "route.unroutable", "purpose %s has no route", m.Purpose)
}

func forReply(reg *registry.Registry, m *bundle.Manifest, spec bundle.Spec, sender *registry.Organisation, original *Original) ([]Recipient, error) {
	if original == nil {
		return nil, fail(errs.Invalid, "route.unknown_original", "InReplyTo names no bundle this gateway has accepted")
	}
	if original.Purpose != spec.RepliesTo {
		return nil, fail(errs.Invalid, "route.reply_purpose", "a %s answers a %s, not a %s", m.Purpose, spec.RepliesTo, original.Purpose)
	}
	region, ok := reg.RegionOf(original.SenderOrg)
	if !ok || region.ID != sender.ID {
		return nil, fail(errs.Forbidden, "route.not_your_case", "only the region of %s can answer its bundles", original.SenderOrg)
	}
	if original.CPR != m.Citizen.CPR || original.CaseID != m.CaseID {
		return nil, fail(errs.Invalid, "route.reply_mismatch", "the reply is about another citizen or case than the bundle it answers")
	}
	return []Recipient{{Org: original.SenderOrg}}, nil
}
