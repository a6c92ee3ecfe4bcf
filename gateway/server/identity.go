package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

// Error codes of Identify.
const (
	// CodeNoCertificate: the request carries no verified client certificate.
	// The listeners require one in the TLS handshake, so this is only seen
	// when the handler is served some other way (a misconfiguration).
	CodeNoCertificate = "auth.no_certificate"
	// CodeUnknownOrganisation: the certificate names no identity
	// (CVR:<cvr>-UID:<uid>) or a CVR number that is not in the registry.
	CodeUnknownOrganisation = "auth.unknown_organisation"
)

// Caller is the authenticated client of a request.
type Caller struct {
	Identity   certs.Identity         // from the verified leaf certificate's subject serialNumber
	Org        *registry.Organisation // the registry's organisation with the identity's CVR
	CertSHA256 string                 // SHA-256 of the leaf certificate's DER, lower-case hex
}

type callerKey struct{}

// CallerFrom returns the Caller Identify put into the request context.
func CallerFrom(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok && c != nil
}

// openPath reports whether a path is reachable with any verified client
// certificate, whether or not it names a registered organisation: the
// health endpoints and the metrics, for the operator's monitoring. The TLS
// handshake has verified the certificate against the client CAs for these
// too; nothing is reachable without one.
func openPath(p string) bool {
	switch p {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// Identify puts the request's Caller into its context: the identity of the
// verified client certificate (certs.IdentityOf on the leaf of the first
// verified chain) and the organisation the registry has for its CVR. It
// works the same over TCP and HTTP/3 (quic-go's http3 server sets r.TLS
// from the QUIC connection's TLS state, verified chains included).
//
// A request without a verified certificate is answered 401
// (auth.no_certificate); one whose certificate names no identity, a
// malformed one or an unregistered CVR is answered 403
// (auth.unknown_organisation). /healthz, /readyz and /metrics pass with
// any verified certificate; they get a Caller when the certificate names a
// registered organisation.
//
// Identify panics if reg is nil: a gateway without a registry is a
// programming error, not a request error.
func Identify(reg *registry.Registry, next http.Handler) http.Handler {
	if reg == nil {
		panic("server: Identify needs an organisation registry")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := identify(reg, r)
		if err != nil {
			if openPath(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			WriteProblem(w, r, err)
			return
		}
		if ri := infoFrom(r.Context()); ri != nil {
			ri.org = c.Org.ID
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

func identify(reg *registry.Registry, r *http.Request) (*Caller, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, errs.E(errs.Unauthenticated, CodeNoCertificate, "a verified client certificate is required")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	id, err := certs.IdentityOf(leaf)
	if err != nil {
		return nil, errs.Wrap(errs.Forbidden, CodeUnknownOrganisation, err,
			"the client certificate names no organisation identity (want subject serialNumber CVR:<cvr>-UID:<uid>)")
	}
	org, ok := reg.ByCVR(id.CVR)
	if !ok {
		return nil, errs.E(errs.Forbidden, CodeUnknownOrganisation,
			"the client certificate's CVR number %s belongs to no organisation of the gateway", id.CVR)
	}
	sum := sha256.Sum256(leaf.Raw)
	return &Caller{Identity: id, Org: org, CertSHA256: hex.EncodeToString(sum[:])}, nil
}
