package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/store"
)

// auditDown is a store whose audit log cannot be appended to.
type auditDown struct{ store.Store }

func (auditDown) Audit(context.Context, store.AuditEntry) error {
	return errs.E(errs.Unavailable, "store.unavailable", "down")
}

// TestReadsNeedTheirAuditEntry: the log must be complete, so a read whose
// entry cannot be written serves nothing.
func TestReadsNeedTheirAuditEntry(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	b := &store.Bundle{ID: "11111111-2222-4333-8444-555555555555", CaseID: "KK-1", Purpose: "forberedelse", SenderOrg: "kommune-101",
		SenderIdentity: "CVR:64942212-UID:x", CPR: "1408812346", Received: now, ManifestSHA256: "00",
		Manifest: []byte("<m/>"), Acceptance: []byte("<a/>")}
	if _, _, err := st.CommitBundle(ctx, b, []store.Delivery{{BundleID: b.ID, Recipient: "region-1084", Function: "sundhedskoordinator", Created: now}},
		store.AuditEntry{At: now, Actor: "x", Action: "push", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	region, _ := registry.Default().ByID("region-1084")
	caller := &Caller{Identity: certs.Identity{CVR: region.CVR, UID: "t"}, Org: region}
	for _, tc := range []struct {
		name  string
		store store.Store
		want  int
	}{
		{"ok/audit-written", st, http.StatusOK},
		{"fail/audit-unavailable", auditDown{st}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &API{Store: tc.store}
			mux := http.NewServeMux()
			api.Register(mux)
			req := httptest.NewRequest("GET", "/v1/bundles/"+b.ID, nil)
			req = req.WithContext(context.WithValue(req.Context(), callerKey{}, caller))
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body.String())
			}
			if tc.want != http.StatusOK && rec.Body.String() == "<a/>" {
				t.Fatal("the bundle was served without its audit entry")
			}
		})
	}
}
