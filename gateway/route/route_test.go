package route

import (
	"testing"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

func TestFor(t *testing.T) {
	reg := registry.Default()
	m := func(p bundle.Purpose, sender string) *bundle.Manifest {
		return &bundle.Manifest{Purpose: p, Sender: bundle.Sender{Organisation: sender}, CaseID: "KK-1", Citizen: bundle.Citizen{CPR: "1408812346"}, InReplyTo: "x"}
	}
	forb := &Original{Purpose: bundle.Forberedelse, SenderOrg: "kommune-101", CaseID: "KK-1", CPR: "1408812346"}
	henv := &Original{Purpose: bundle.Henvisning, SenderOrg: "kommune-751", CaseID: "KK-1", CPR: "1408812346"}
	cases := []struct {
		name     string
		m        *bundle.Manifest
		original *Original
		want     Recipient
		code     string
	}{
		{name: "ok/forberedelse-to-sundhedskoordinator", m: m(bundle.Forberedelse, "kommune-101"), want: Recipient{"region-1084", registry.FunctionSundhedskoordinator}},
		{name: "ok/aarhus-to-midtjylland", m: m(bundle.Forberedelse, "kommune-751"), want: Recipient{"region-1082", registry.FunctionSundhedskoordinator}},
		{name: "ok/bornholm-to-hovedstaden", m: m(bundle.Henvisning, "kommune-400"), want: Recipient{"region-1084", registry.FunctionKliniskFunktion}},
		{name: "ok/indstilling-to-sundhedskoordinator", m: m(bundle.Indstilling, "kommune-101"), want: Recipient{"region-1084", registry.FunctionSundhedskoordinator}},
		{name: "ok/reply-to-original-sender", m: m(bundle.SKUdtalelse, "region-1084"), original: forb, want: Recipient{Org: "kommune-101"}},
		{name: "ok/attest-to-aarhus", m: m(bundle.KlinikAttest, "region-1082"), original: henv, want: Recipient{Org: "kommune-751"}},
		{name: "fail/reply-to-unknown", m: m(bundle.SKUdtalelse, "region-1084"), code: "route.unknown_original"},
		{name: "fail/reply-to-wrong-purpose", m: m(bundle.SKUdtalelse, "region-1084"), original: &Original{Purpose: bundle.Henvisning, SenderOrg: "kommune-101", CaseID: "KK-1", CPR: "1408812346"}, code: "route.reply_purpose"},
		{name: "fail/other-region-answers", m: m(bundle.SKUdtalelse, "region-1082"), original: forb, code: "route.not_your_case"},
		{name: "fail/reply-about-another-citizen", m: func() *bundle.Manifest {
			x := m(bundle.SKUdtalelse, "region-1084")
			x.Citizen.CPR = "0101074001"
			return x
		}(), original: forb, code: "route.reply_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := For(reg, tc.m, tc.original)
			if tc.code != "" {
				if errs.CodeOf(err) != tc.code {
					t.Fatalf("want %s, got %v", tc.code, err)
				}
				return
			}
			if err != nil || len(got) != 1 || got[0] != tc.want {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
}
