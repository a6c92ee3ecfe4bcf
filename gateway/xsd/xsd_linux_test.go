package xsd

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rehabgw/rehabgw/schemas"
)

// TestNothingIsOpened proves that no instance and no schema can make libxml2
// open a local file: every reference points at a FIFO, and opening a FIFO for
// reading blocks until a writer comes, so a Validate or Compile that opened it
// would hang instead of returning.
func TestNothingIsOpened(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	url := "file://" + fifo
	s := compileManifest(t)
	minimal := string(readFixture(t, "manifest/ok-minimal.xml"))
	withEntity := strings.Replace(minimal, "Test Person", "&e;", 1)
	const head = `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t" xmlns="urn:t">`
	const tail = `<xs:element name="A" type="xs:string"/></xs:schema>`

	tests := []struct {
		name string
		run  func() error
	}{}
	for _, ref := range []string{url, fifo} {
		for _, doc := range []string{
			`<!DOCTYPE Manifest [<!ENTITY e SYSTEM "` + ref + `">]>` + withEntity,
			`<!DOCTYPE Manifest SYSTEM "` + ref + `">` + withEntity,
			`<!DOCTYPE Manifest SYSTEM "` + ref + `">` + minimal,
			`<!DOCTYPE Manifest [<!ENTITY % p SYSTEM "` + ref + `"> %p;]>` + minimal,
			`<!DOCTYPE Manifest PUBLIC "-//x//y" "` + ref + `">` + minimal,
			strings.Replace(strings.Replace(minimal, `ID="M-1"`, `ID="M-1" xmlns:xi="http://www.w3.org/2001/XInclude"`, 1),
				"</Manifest>", `<xi:include href="`+ref+`"/></Manifest>`, 1),
			strings.Replace(minimal, `ID="M-1"`, `ID="M-1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:rehabgw:manifest:v1 `+ref+`"`, 1),
		} {
			tests = append(tests, struct {
				name string
				run  func() error
			}{"instance/" + doc[:min(60, len(doc))], func() error { return s.Validate([]byte(doc)) }})
		}
		for _, schema := range []string{
			head + `<xs:include schemaLocation="` + ref + `"/>` + tail,
			head + `<xs:import namespace="urn:x" schemaLocation="` + ref + `"/>` + tail,
			head + `<xs:redefine schemaLocation="` + ref + `"/>` + tail,
			`<!DOCTYPE xs:schema [<!ENTITY e SYSTEM "` + ref + `">]>` + head + `<xs:annotation><xs:documentation>&e;</xs:documentation></xs:annotation>` + tail,
			`<!DOCTYPE xs:schema SYSTEM "` + ref + `">` + head + tail,
			`<!DOCTYPE xs:schema [<!ENTITY % p SYSTEM "` + ref + `"> %p;]>` + head + tail,
		} {
			fsys := fstest.MapFS{"a.xsd": {Data: []byte(schema)}}
			tests = append(tests, struct {
				name string
				run  func() error
			}{"schema/" + schema[:min(90, len(schema))], func() error {
				c, err := Compile(fsys, "a.xsd")
				if err == nil {
					c.Close()
				}
				return err
			}})
		}
	}
	for _, tt := range tests {
		done := make(chan error, 1)
		go func() { done <- tt.run() }()
		select {
		case err := <-done:
			t.Logf("%s: %v", tt.name, err)
		case <-time.After(10 * time.Second):
			t.Errorf("%s: opened the FIFO", tt.name)
			// Unblock the reader so that the test can finish.
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			<-done
		}
	}
}

// TestNothingOnStderr checks that libxml2 prints nothing, whatever fails.
func TestNothingOnStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(w.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()

	s, cerr := Compile(schemas.FS, "manifest-v1.xsd")
	if cerr == nil {
		for _, f := range []string{"manifest/fail-two-errors.xml", "manifest/malformed-mismatched-tag.xml",
			"manifest/malformed-undeclared-prefix.xml", "manifest/fail-part-attrs.xml"} {
			_ = s.Validate(readFixture(t, f))
		}
		_ = s.Validate([]byte(`<!DOCTYPE Manifest [<!ENTITY e SYSTEM "file:///etc/passwd">]><Manifest xmlns="urn:rehabgw:manifest:v1">&e;</Manifest>`))
		_ = s.Validate([]byte(`<!DOCTYPE Manifest SYSTEM "file:///nonexistent"><Manifest xmlns="urn:x" xmlns:a="not a uri"/>`))
		_ = s.Validate([]byte("\xff\xfe<"))
		s.Close()
	}
	_, _ = Compile(fstest.MapFS{"a.xsd": {Data: []byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:include schemaLocation="http://example.com/x"/><xs:import namespace="urn:q" schemaLocation="q.xsd"/><xs:element name="A" type="Nope"/></xs:schema>`)}}, "a.xsd")
	_, _ = Compile(fstest.MapFS{"a.xsd": {Data: []byte(`<nope`)}}, "a.xsd")

	if err := syscall.Dup3(saved, 2, 0); err != nil {
		t.Fatal(err)
	}
	syscall.Close(saved)
	w.Close()
	got := <-out
	r.Close()
	if cerr != nil {
		t.Fatal(cerr)
	}
	if got != "" {
		t.Errorf("libxml2 wrote to stderr:\n%s", got)
	}
}
