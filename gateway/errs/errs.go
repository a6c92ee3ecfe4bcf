// Package errs is the gateway's small error taxonomy.
//
// Every error that can reach a client or an operator carries a Kind (what
// class of failure it is, which decides the HTTP status and the CLI exit code
// in exactly one place each) and a stable Code (a dotted identifier such as
// "xml.doctype" or "sig.untrusted" that vendors may match on). Codes are part
// of the public contract and are listed in docs/bundle-format.md.
//
// The Msg of an Error must be safe to show to the sender and to write to a
// log: it never contains a CPR number, document content or key material.
// Use Redact on any text that comes from a third-party library before it is
// put into Msg.
package errs

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Kind classifies an error.
type Kind int

// The kinds. Keep the list short: a new kind needs a new HTTP status mapping.
const (
	Other           Kind = iota // an internal error; details go to the log only
	Invalid                     // malformed or schema-invalid input, broken business rule
	Unauthenticated             // no usable client identity
	Forbidden                   // identity known but not allowed
	BadSignature                // signature missing, malformed, untrusted or not matching
	Conflict                    // same identifier, different content
	TooLarge                    // a size, depth or count limit was exceeded
	Unavailable                 // a dependency is down; nothing was stored; retry later
	NotFound                    // no such object (or not visible to the caller)
	TooEarly                    // replayable early data refused
)

var kindNames = [...]string{
	Other:           "internal",
	Invalid:         "invalid",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	BadSignature:    "bad-signature",
	Conflict:        "conflict",
	TooLarge:        "too-large",
	Unavailable:     "unavailable",
	NotFound:        "not-found",
	TooEarly:        "too-early",
}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "unknown"
	}
	return kindNames[k]
}

// Error is the gateway's structured error.
type Error struct {
	Kind Kind
	Code string // stable, dotted, e.g. "xsd.invalid"
	Part string // the part concerned ("manifest.xml" or a part ID), if any
	Line int    // 1-based line in the part, if known
	Path string // element path such as "/Manifest/Citizen/CPR", if known
	Msg  string // safe, human-readable; never a CPR number or document content
	Err  error  // the underlying cause, for errors.Is/As; may be nil
}

// Error renders "part:line: path: msg [code]" with the empty fields left out.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Part != "" {
		b.WriteString(e.Part)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Code != "" {
		b.WriteString(" [")
		b.WriteString(e.Code)
		b.WriteString("]")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an Error with a kind, a code and a formatted safe message.
func E(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Wrap builds an Error around a cause. The cause's text is not copied into
// Msg (it may hold unsafe content); it is reachable through Unwrap.
func Wrap(kind Kind, code string, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// InPart returns a copy of e located in a part.
func (e *Error) InPart(part string) *Error {
	c := *e
	c.Part = part
	return &c
}

// At returns a copy of e located at a line and/or path.
func (e *Error) At(line int, path string) *Error {
	c := *e
	c.Line = line
	c.Path = path
	return &c
}

// KindOf returns the Kind of the first *Error in err's chain, or Other.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Other
}

// CodeOf returns the Code of the first *Error in err's chain, or "internal".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return "internal"
}

// List is a set of errors found in one pass (for example every XSD error of a
// document). It is itself an error; its Kind is the Kind of its first entry.
type List []*Error

func (l List) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes the entries to errors.Is and errors.As.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err returns nil for an empty list, the single error for one entry, and the
// list otherwise, so callers can return it unconditionally.
func (l List) Err() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	}
	return l
}

// Flatten returns the *Error entries in err: the entries of a List, or the
// single *Error in the chain, or a synthetic internal error.
func Flatten(err error) []*Error {
	if err == nil {
		return nil
	}
	var l List
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return []*Error{{Kind: Other, Code: "internal", Msg: "internal error"}}
}

var (
	// quotedValue matches the "value '...'" phrases libxml2 and others use to
	// echo input back; the value may be a CPR number or document content.
	quotedValue = regexp.MustCompile(`(?i)(value|content|string|literal)\s+'[^']*'`)
	// digitRun matches anything that could be a CPR number (DDMMYY-SSSS or ten
	// digits) and any other long digit run, which is never needed in a message.
	digitRun = regexp.MustCompile(`\d{6}-?\d{4}|\d{9,}`)
)

// Redact removes values that might be personal data from a third-party
// message: quoted input values and CPR-like digit runs.
func Redact(s string) string {
	s = quotedValue.ReplaceAllString(s, "$1 '[redacted]'")
	s = digitRun.ReplaceAllString(s, "[redacted]")
	return s
}
