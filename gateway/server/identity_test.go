package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

// edgeCommittedLeaf reads a leaf of the committed test PKI.
func edgeCommittedLeaf(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	_, chain, err := certs.LoadKeyPair(filepath.Join("..", "..", "testdata", "pki", name+".crt"),
		filepath.Join("..", "..", "testdata", "pki", name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return chain[0]
}

func TestIdentify(t *testing.T) {
	reg := registry.Default()
	var got *Caller
	h := WithRequestID(Identify(reg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = CallerFrom(r.Context())
	})))
	leaf := edgeCommittedLeaf(t, "region-1082")
	verified := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf},
		VerifiedChains: [][]*x509.Certificate{{leaf}}}
	unverified := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}}

	for _, tc := range []struct {
		name   string
		path   string
		tls    *tls.ConnectionState
		status int
		code   string
		caller bool
	}{
		{"ok/verified", "/v1/inbox", verified, 200, "", true},
		{"ok/health-with-identity", "/healthz", verified, 200, "", true},
		{"fail/no-tls", "/v1/inbox", nil, 401, CodeNoCertificate, false},
		{"fail/unverified", "/v1/inbox", unverified, 401, CodeNoCertificate, false},
		{"ok/no-tls-health", "/readyz", nil, 200, "", false},
		{"fail/health-lookalike", "/healthz/x", nil, 401, CodeNoCertificate, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			r := httptest.NewRequest("GET", tc.path, nil)
			r.TLS = tc.tls
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body.String())
			}
			if tc.code != "" {
				var p Problem
				_ = json.Unmarshal(w.Body.Bytes(), &p)
				if p.Code != tc.code {
					t.Errorf("code %q, want %q", p.Code, tc.code)
				}
			}
			if (got != nil) != tc.caller {
				t.Fatalf("caller %+v, want one: %v", got, tc.caller)
			}
			if got != nil && (got.Org.ID != "region-1082" || got.Org.Kind != registry.KindRegion ||
				got.Identity.UID != "rehabgw-dev-region-1082" || len(got.CertSHA256) != 64) {
				t.Errorf("caller %+v", got)
			}
		})
	}
}

func TestIdentifyNeedsRegistry(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Identify(nil, ...) did not panic")
		}
	}()
	Identify(nil, http.NotFoundHandler())
}

func TestCallerFromEmptyContext(t *testing.T) {
	if c, ok := CallerFrom(httptest.NewRequest("GET", "/", nil).Context()); ok || c != nil {
		t.Errorf("caller %+v", c)
	}
}
