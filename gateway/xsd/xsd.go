// Package xsd validates XML documents against W3C XML Schemas with libxml2,
// through a small hand-written cgo binding.
//
// Why libxml2: the schemas under schemas/ are the normative contract for
// the municipal and regional IT vendors, and they are told to check their
// output with
//
//	xmllint --noout --schema schemas/<type>-v1.xsd document.xml
//
// Using the same engine (libxml2's xmlschemas) in the gateway means a vendor
// gets exactly the gateway's verdict before sending anything; a second,
// independent XSD implementation would disagree on corner cases (regular
// expression dialect, date arithmetic, wildcard handling). A differential
// test (xmllint_test.go) holds the two verdicts equal.
//
// Security. Schemas are compiled only from an fs.FS: at Compile every *.xsd
// file of the fs.FS (and the entry) is copied into C memory and registered
// under a private URL prefix; a process-wide libxml2 external entity loader,
// installed once, serves those registered files and refuses everything else,
// so no xs:include, xs:import or external entity in a schema or an instance
// can ever read a local file or reach the network. Instance documents are
// parsed with XML_PARSE_NONET and without NOENT, DTDLOAD, DTDATTR, XINCLUDE
// and HUGE: entities are not expanded and libxml2's size and depth limits
// stay in force. Note that the loader is process-wide: any other libxml2
// user in the same process that loads documents by URL is refused as well.
//
// Errors. Validate returns an errs.List with Kind errs.Invalid: code
// "xml.malformed" when the document is not (namespace-)well-formed, and
// "xsd.invalid" for each error the schema validator reports (at most 50),
// with the line and the element path. Messages are passed through
// errs.Redact, and the value of the node concerned is blanked out of them
// first, because libxml2 echoes offending values such as CPR numbers.
// libxml2 never prints anything: its error handlers are pointed at a
// collector for the duration of each call.
//
// A difference from xmllint's exit status: a document that is well-formed
// but not namespace-well-formed (an undeclared prefix, say) is rejected as
// "xml.malformed" even where the schema would not notice it (inside a
// processContents="skip" wildcard); xmllint prints the namespace error but
// may still exit 0.
package xsd

/*
#cgo pkg-config: libxml-2.0
#include <stdlib.h>
#include "binding.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// urlPrefix must match RGX_PREFIX in binding.h.
const urlPrefix = "/__rehabgw_xsd__/"

// MaxErrors is the most errors Validate reports for one document.
const MaxErrors = C.RGX_MAX_ERRS

// Limits on what Compile copies out of an fs.FS.
const (
	maxSchemaFiles = 10000
	maxSchemaBytes = 64 << 20
)

var (
	initOnce  sync.Once
	compileID atomic.Uint64
)

func initLibxml2() { initOnce.Do(func() { C.rgx_init() }) }

// Schema is one compiled XSD (with everything it includes/imports), safe for
// concurrent use by many goroutines.
type Schema struct {
	entry   string
	mu      sync.RWMutex // Validate holds it shared, Close exclusively
	ptr     C.xmlSchemaPtr
	cleanup runtime.Cleanup
}

// Compile compiles the schema at path entry inside fsys. Includes and imports
// are resolved relative to the including file, only inside fsys: no network,
// no local file system, no other URL is ever opened. Every file of fsys whose
// name ends in ".xsd" can be included or imported; a reference to anything
// else (including a path that climbs out of fsys with "..") makes Compile
// fail, even for an xs:import, which libxml2 would otherwise skip.
//
// A Compile error is a plain error: it is a programming or configuration
// mistake, not a property of any input.
func Compile(fsys fs.FS, entry string) (*Schema, error) {
	initLibxml2()
	entry = strings.TrimPrefix(entry, "./")
	if !fs.ValidPath(entry) || entry == "." {
		return nil, fmt.Errorf("xsd: invalid schema path %q", entry)
	}
	entry = path.Clean(entry)
	if _, err := fs.Stat(fsys, entry); err != nil {
		return nil, fmt.Errorf("xsd: schema %s: %w", entry, err)
	}

	prefix := urlPrefix + strconv.FormatUint(compileID.Add(1), 10) + "/"
	cprefix := C.CString(prefix)
	defer C.free(unsafe.Pointer(cprefix))
	// The files are needed only while libxml2 parses them: the compiled
	// schema keeps no reference to the registered bytes.
	defer C.rgx_unregister_prefix(cprefix)
	if err := registerFS(fsys, entry, prefix); err != nil {
		return nil, err
	}

	res := C.rgx_result_new()
	if res == nil {
		return nil, errors.New("xsd: out of memory")
	}
	defer C.rgx_result_free(res)
	curl := C.CString(prefix + entry)
	defer C.free(unsafe.Pointer(curl))
	ptr := C.rgx_compile(curl, res)

	if ptr == nil || res.errors > 0 || res.refused > 0 || res.oom != 0 || unlocated(res) {
		if ptr != nil {
			C.xmlSchemaFree(ptr)
		}
		return nil, compileError(entry, prefix, res)
	}
	s := &Schema{entry: entry, ptr: ptr}
	s.cleanup = runtime.AddCleanup(s, func(p C.xmlSchemaPtr) { C.xmlSchemaFree(p) }, ptr)
	return s, nil
}

// registerFS copies the entry and every *.xsd file of fsys into the C table.
func registerFS(fsys fs.FS, entry, prefix string) error {
	var files, total int
	add := func(p string) error {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("xsd: reading %s: %w", p, err)
		}
		files++
		total += len(data)
		if files > maxSchemaFiles || total > maxSchemaBytes {
			return fmt.Errorf("xsd: the schema fs.FS holds more than %d files or %d bytes of *.xsd", maxSchemaFiles, maxSchemaBytes)
		}
		cu := C.CString(prefix + p)
		defer C.free(unsafe.Pointer(cu))
		var ptr *C.char
		if len(data) > 0 {
			ptr = (*C.char)(unsafe.Pointer(&data[0]))
		}
		if C.rgx_register(cu, ptr, C.int(len(data))) != 0 {
			return errors.New("xsd: out of memory")
		}
		return nil
	}
	if !strings.EqualFold(path.Ext(entry), ".xsd") {
		if err := add(entry); err != nil {
			return err
		}
	}
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("xsd: walking the schema fs.FS: %w", err)
		}
		if d.IsDir() || !strings.EqualFold(path.Ext(p), ".xsd") {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// os.DirFS reports symbolic links as such; follow them to files.
			if fi, err := fs.Stat(fsys, p); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		return add(p)
	})
}

// unlocated reports whether libxml2 skipped a schema it could not locate
// (it only warns for an xs:import it cannot load).
func unlocated(res *C.rgx_result) bool {
	for i := 0; i < int(res.n); i++ {
		if res.errs[i].code == C.XML_SCHEMAP_WARN_UNLOCATED_SCHEMA {
			return true
		}
	}
	return false
}

func compileError(entry, prefix string, res *C.rgx_result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "xsd: compiling %s failed", entry)
	unprefix := func(s string) string {
		s = strings.ReplaceAll(s, prefix, "")
		return strings.ReplaceAll(s, strings.TrimPrefix(prefix, "/"), "")
	}
	for i := 0; i < int(res.n); i++ {
		e := &res.errs[i]
		b.WriteString("\n\t")
		if e.file != nil {
			b.WriteString(unprefix(C.GoString(e.file)))
			if e.line > 0 {
				fmt.Fprintf(&b, ":%d", int(e.line))
			}
			b.WriteString(": ")
		}
		if e.level == C.XML_ERR_WARNING {
			b.WriteString("warning: ")
		}
		b.WriteString(oneLine(unprefix(C.GoString(e.msg))))
	}
	if more := int(res.errors) - int(res.n); more > 0 {
		fmt.Fprintf(&b, "\n\t(%d more)", more)
	}
	if res.oom != 0 {
		b.WriteString("\n\tout of memory")
	}
	if res.n == 0 && res.oom == 0 {
		b.WriteString(": libxml2 gave no reason")
	}
	return errors.New(b.String())
}

// Validate parses doc (the bytes of one XML document) and validates it. It
// returns nil when the document is valid, and otherwise an errs.List (every
// error libxml2 reports, at most MaxErrors) whose entries carry the Line and,
// where libxml2 names a node, the element Path. Validate does no I/O.
func (s *Schema) Validate(doc []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return fmt.Errorf("xsd: Validate on the closed schema %s", s.entry)
	}
	if len(doc) > math.MaxInt32 {
		return errs.E(errs.TooLarge, "xml.too_large", "document is larger than %d bytes", math.MaxInt32)
	}
	res := C.rgx_result_new()
	if res == nil {
		return errors.New("xsd: out of memory")
	}
	defer C.rgx_result_free(res)
	var ptr *C.char
	if len(doc) > 0 {
		ptr = (*C.char)(unsafe.Pointer(&doc[0]))
	}
	C.rgx_validate(s.ptr, ptr, C.int(len(doc)), res)
	runtime.KeepAlive(s)
	runtime.KeepAlive(doc)

	if res.oom != 0 {
		return errors.New("xsd: out of memory in libxml2")
	}
	if res.malformed != 0 {
		return collect(res, C.RGX_PHASE_PARSE, "xml.malformed", "the document is not well-formed XML")
	}
	if res.rc == 0 {
		return nil
	}
	return collect(res, C.RGX_PHASE_VALIDATE, "xsd.invalid",
		fmt.Sprintf("the document does not conform to the schema (libxml2 status %d)", int(res.rc)))
}

// collect converts the error-level entries of one phase into an errs.List,
// with fallback as the message if libxml2 reported none.
func collect(res *C.rgx_result, phase C.int, code, fallback string) errs.List {
	var out errs.List
	for i := 0; i < int(res.n); i++ {
		e := &res.errs[i]
		if e.phase != phase || e.level < C.XML_ERR_ERROR {
			continue
		}
		var values []string
		if e.values != nil && e.values_len > 0 {
			raw := C.GoBytes(unsafe.Pointer(e.values), e.values_len)
			values = strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
		}
		msg := C.GoString(e.msg)
		p := ""
		if e.path != nil {
			p = C.GoString(e.path)
			// libxml2 names the element, not the attribute, as the node of
			// an attribute error; the message names the attribute.
			if m := attrMsg.FindStringSubmatch(msg); m != nil && !strings.Contains(p, "/@") {
				p += "/@" + m[1]
			}
		}
		out = append(out, &errs.Error{
			Kind: errs.Invalid,
			Code: code,
			Line: int(e.line),
			Path: p,
			Msg:  redact(msg, values...),
		})
	}
	if len(out) == 0 {
		out = append(out, &errs.Error{Kind: errs.Invalid, Code: code, Msg: fallback})
	}
	return out
}

var (
	// "Element '{ns}Part', attribute 'size': ..." (the name may be {ns}local).
	attrMsg = regexp.MustCompile(`^Element '[^']*', attribute '(?:\{[^}]*\})?([^'{}]+)':`)
	// "'v' is not a valid value of the atomic type 'T'": not caught by
	// errs.Redact, which looks for "value 'v'".
	notValidValue = regexp.MustCompile(`'[^']*' is not a valid value`)
	// Identity-constraint messages quote the key values: "key-sequence ['a', 'b']".
	keySequence = regexp.MustCompile(`key-sequence \[[^\]]*\]`)
	// "Bytes: 0x.. 0x.." after an encoding error echoes document bytes.
	rawBytes = regexp.MustCompile(`Bytes:( 0x[0-9A-Fa-f]{2})+`)
	spaces   = regexp.MustCompile(`\s+`)
)

// redact makes a libxml2 message safe for errs.Error.Msg: the values of the
// node concerned (its text, its attributes) are blanked wherever they are
// quoted (exactly, so a value containing an apostrophe cannot defeat a
// regular expression), then the generic patterns are applied, then
// errs.Redact.
func redact(msg string, values ...string) string {
	msg = oneLine(msg)
	for _, value := range values {
		if value == "" {
			continue
		}
		// msg is folded onto one line, so an echoed value is folded too.
		folded := spaces.ReplaceAllString(value, " ")
		forms := []string{folded, strings.TrimSpace(folded)}
		for _, f := range forms {
			if f != "" {
				msg = strings.ReplaceAll(msg, "'"+f+"'", "'[redacted]'")
			}
		}
	}
	msg = notValidValue.ReplaceAllString(msg, "'[redacted]' is not a valid value")
	msg = keySequence.ReplaceAllString(msg, "key-sequence [redacted]")
	msg = rawBytes.ReplaceAllString(msg, "Bytes: [redacted]")
	return errs.Redact(msg)
}

// oneLine trims a libxml2 message and folds it onto one line.
func oneLine(s string) string {
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}

// Close frees the compiled schema's C memory. Validate calls that are under
// way finish first; later ones return an error. Calling Close more than once
// is harmless. A runtime cleanup frees the memory of a Schema that becomes
// unreachable without Close.
func (s *Schema) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr == nil {
		return
	}
	s.cleanup.Stop()
	C.xmlSchemaFree(s.ptr)
	s.ptr = nil
}

// registeredFiles returns the number of schema files currently registered
// with the entity loader (for tests: it is 0 whenever no Compile is running).
func registeredFiles() int { return int(C.rgx_registered()) }
