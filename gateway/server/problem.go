package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// ProblemTypeBase is the prefix of every problem type URI; the rest is the
// problem's code, e.g. https://rehabgw.dk/problems/xsd.invalid.
const ProblemTypeBase = "https://rehabgw.dk/problems/"

// ProblemContentType is the media type of problem responses (RFC 9457).
const ProblemContentType = "application/problem+json"

// MaxProblemItems bounds the errors array of one problem; ErrorsTotal tells
// how many there were.
const MaxProblemItems = 100

// internalDetail is the only detail a client ever sees for an internal error.
const internalDetail = "the gateway could not handle the request; quote the request ID when reporting it"

// errTooEarly answers a request sent as TLS early data.
var errTooEarly = errs.E(errs.TooEarly, "http.too_early", "requests sent as TLS early data (0-RTT) are refused; send the request after the handshake")

// Problem is the body of every error response (RFC 9457 problem details,
// media type application/problem+json):
//
//	{
//	  "type": "https://rehabgw.dk/problems/xsd.invalid",
//	  "title": "Invalid request",
//	  "status": 400,
//	  "code": "xsd.invalid",
//	  "detail": "2 problems; the first: doc-1.xml:12: /Dok/Navn: ...",
//	  "errors": [{"code": "xsd.invalid", "part": "doc-1.xml", "line": 12, "path": "/Dok/Navn", "message": "..."}, ...],
//	  "errors_total": 2,
//	  "request_id": "9f0c..."
//	}
//
// type is ProblemTypeBase + code; code repeats it as a plain string for
// clients that match on it. title is a fixed text per kind. detail and the
// errors' messages are the safe errs.Error messages; for an internal error
// (kind Other, or an error that is not an *errs.Error) detail is a fixed
// text, code is "internal" (or the error's own code) and the cause goes to
// the access log only.
type Problem struct {
	Type        string        `json:"type"`
	Title       string        `json:"title"`
	Status      int           `json:"status"`
	Code        string        `json:"code"`
	Detail      string        `json:"detail,omitempty"`
	Errors      []ProblemItem `json:"errors,omitempty"`
	ErrorsTotal int           `json:"errors_total,omitempty"` // set when Errors holds more than one entry
	RequestID   string        `json:"request_id,omitempty"`
}

// ProblemItem is one entry of Problem.Errors: one errs.Error of an errs.List.
type ProblemItem struct {
	Code    string `json:"code"`
	Part    string `json:"part,omitempty"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// StatusOf is the one place that maps an error kind to an HTTP status.
func StatusOf(k errs.Kind) int {
	switch k {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.Forbidden, errs.BadSignature:
		return http.StatusForbidden
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.TooEarly:
		return http.StatusTooEarly
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// titleOf is the fixed, safe title of each kind.
func titleOf(k errs.Kind) string {
	switch k {
	case errs.Invalid:
		return "Invalid request"
	case errs.Unauthenticated:
		return "Authentication required"
	case errs.Forbidden:
		return "Forbidden"
	case errs.BadSignature:
		return "Signature not accepted"
	case errs.NotFound:
		return "Not found"
	case errs.Conflict:
		return "Conflict"
	case errs.TooLarge:
		return "Request too large"
	case errs.TooEarly:
		return "Too early"
	case errs.Unavailable:
		return "Service unavailable"
	}
	return "Internal error"
}

// RetryAfterSeconds is the Retry-After of a 503 problem.
const RetryAfterSeconds = 5

// NewProblem builds the problem body for err (see Problem); requestID may
// be empty.
func NewProblem(err error, requestID string) *Problem {
	kind := errs.KindOf(err)
	var mbe *http.MaxBytesError
	if kind == errs.Other && errors.As(err, &mbe) {
		err = errs.E(errs.TooLarge, "request.too_large", "the request is larger than %d bytes", mbe.Limit)
		kind = errs.TooLarge
	}
	if StatusOf(kind) == http.StatusInternalServerError {
		kind = errs.Other // including kinds this package does not know
	}
	p := &Problem{Title: titleOf(kind), Status: StatusOf(kind), RequestID: requestID}
	if kind == errs.Other {
		p.Code = "internal"
		var e *errs.Error
		if errors.As(err, &e) && e.Code != "" {
			p.Code = e.Code
		}
		p.Detail = internalDetail
	} else {
		list := errs.Flatten(err)
		p.Code = errs.CodeOf(err)
		p.Detail = safeText(list[0])
		if len(list) > 1 {
			p.Detail = fmt.Sprintf("%d problems; the first: %s", len(list), p.Detail)
			p.ErrorsTotal = len(list)
			for _, e := range list[:min(len(list), MaxProblemItems)] {
				p.Errors = append(p.Errors, itemOf(e))
			}
		}
	}
	p.Type = ProblemTypeBase + url.PathEscape(p.Code)
	return p
}

// safeText renders an *errs.Error's location and message without its code
// (the problem carries the code separately); an internal entry of a list
// is reduced to a fixed text.
func safeText(e *errs.Error) string {
	if e.Kind == errs.Other {
		return "internal error"
	}
	c := *e
	c.Code = ""
	return c.Error()
}

func itemOf(e *errs.Error) ProblemItem {
	it := ProblemItem{Code: e.Code, Part: e.Part, Line: e.Line, Path: e.Path, Message: e.Msg}
	if it.Code == "" {
		it.Code = "internal"
	}
	if e.Kind == errs.Other {
		it.Message = "internal error"
	}
	return it
}

// WriteProblem answers the request with the problem for err: the status
// from StatusOf, application/problem+json, Cache-Control: no-store, and
// Retry-After for 503. An internal error's text never reaches the client;
// it is kept for the access log. If the response has already started,
// WriteProblem only records the error.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = errs.E(errs.Other, "internal", "WriteProblem called without an error")
	}
	p := NewProblem(err, RequestID(r.Context()))
	if p.Status >= 500 {
		recordInternal(r, err) // the cause goes to the access log, redacted
	}
	if ri := infoFrom(r.Context()); ri != nil && ri.sw != nil && ri.sw.status != 0 {
		if p.Status < 500 {
			recordInternal(r, fmt.Errorf("problem after the response started: %w", err))
		}
		return
	}
	body, merr := json.Marshal(p)
	if merr != nil { // cannot happen: only strings and ints
		body = []byte(`{"type":"about:blank","title":"Internal error","status":500,"code":"internal"}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Disposition", "Repr-Digest", "Location", "ETag", "Last-Modified"} {
		h.Del(k)
	}
	h.Set("Content-Type", ProblemContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", fmt.Sprint(RetryAfterSeconds))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
