package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"unicode"

	"github.com/quic-go/quic-go"
)

// Problem is a non-2xx answer of the gateway: its RFC 9457 problem details,
// or, for a response that carries none (a proxy's error page, a plain-text
// 404 of the router), the status with Title set to the status text and
// Detail to the start of the body.
type Problem struct {
	Type        string        `json:"type"`
	Title       string        `json:"title"`
	Status      int           `json:"status"`
	Code        string        `json:"code"`
	Detail      string        `json:"detail"`
	Errors      []ProblemItem `json:"errors"`
	ErrorsTotal int           `json:"errors_total"` // the number of errors, when Errors was capped
	RequestID   string        `json:"request_id"`
}

// ProblemItem is one error of a Problem (one XSD error, for example).
type ProblemItem struct {
	Code    string `json:"code"`
	Part    string `json:"part"`
	Line    int    `json:"line"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Error renders "gateway: HTTP 403 auth.unknown_organisation: detail
// (request 9f0c...)".
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gateway: HTTP %d", p.Status)
	if p.Code != "" {
		b.WriteString(" ")
		b.WriteString(p.Code)
	}
	switch {
	case p.Detail != "":
		b.WriteString(": ")
		b.WriteString(p.Detail)
	case p.Title != "":
		b.WriteString(": ")
		b.WriteString(p.Title)
	}
	if p.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", p.RequestID)
	}
	return b.String()
}

// maxProblemBytes bounds what CheckResponse reads of an error body.
const maxProblemBytes = 1 << 20

// maxPlainDetail bounds the Detail taken from a body that is no problem.
const maxPlainDetail = 200

// CheckResponse returns nil for a 2xx response and leaves its body alone.
// For any other status it reads (at most 1 MiB) and closes the body and
// returns a *Problem: decoded from an application/problem+json body, or
// built from the status and the start of any other body.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBytes))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" {
		var p Problem
		if err := json.Unmarshal(body, &p); err == nil {
			if p.Status == 0 {
				p.Status = resp.StatusCode
			}
			if p.RequestID == "" {
				p.RequestID = resp.Header.Get("X-Request-ID")
			}
			return &p
		}
	}
	return &Problem{
		Status:    resp.StatusCode,
		Title:     http.StatusText(resp.StatusCode),
		Detail:    plainDetail(body),
		RequestID: resp.Header.Get("X-Request-ID"),
	}
}

// plainDetail is the printable start of a body that is not a problem.
func plainDetail(body []byte) string {
	s := strings.ToValidUTF8(string(body), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxPlainDetail {
		s = string(r[:maxPlainDetail]) + "..."
	}
	return s
}

// IsUnavailable reports whether err means "the gateway could not be reached
// or could not serve the request now; retry later": a *Problem with a 5xx
// status, a timeout, a refused, reset or unreachable connection, or a
// connection that broke off. A refusal of the TLS handshake (untrusted or
// missing certificate, protocol version) is not: retrying cannot fix it.
// Neither is a cancelled context.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var p *Problem
	if errors.As(err, &p) {
		return p.Status >= 500
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if isTLSRefusal(err) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	if errors.As(err, &idle) || errors.As(err, &hs) {
		return true
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EPIPE, io.ErrUnexpectedEOF, io.EOF, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var appErr *quic.ApplicationError
	if errors.As(err, &appErr) && appErr.Remote {
		return true // the gateway closed the connection (shutdown, GOAWAY)
	}
	var stateless *quic.StatelessResetError
	return errors.As(err, &stateless)
}

// isTLSRefusal reports a handshake that the peer or this side refused for
// a reason a retry cannot fix.
func isTLSRefusal(err error) bool {
	var alert tls.AlertError
	var recordHeader tls.RecordHeaderError
	var verify *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &alert) || errors.As(err, &recordHeader) || errors.As(err, &verify) ||
		errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		return true // a TLS alert over QUIC
	}
	// crypto/tls reports an alert received over TCP as a *net.OpError with
	// Op "remote error".
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}
