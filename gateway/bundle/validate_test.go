package bundle_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
)

// rehash updates the manifest entry of a part after its file changed.
func rehash(t *testing.T, dir, partID string) {
	t.Helper()
	data := readFile(t, filepath.Join(dir, partID))
	sum := sha256.Sum256(data)
	editXML(t, filepath.Join(dir, bundle.ManifestFile), func(root *etree.Element) {
		for _, p := range find(root, "Parts").ChildElements() {
			if p.SelectAttrValue("id", "") == partID {
				p.CreateAttr("size", strconv.Itoa(len(data)))
				p.CreateAttr("sha256", hex.EncodeToString(sum[:]))
			}
		}
	})
}

// validateDir runs what `gwctl validate` runs.
func validateDir(t *testing.T, v *bundle.Validator, dir string) (*bundle.Manifest, error) {
	t.Helper()
	d, err := bundle.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data, err := d.ReadManifest(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	m, err := v.Manifest(data)
	if err != nil {
		return m, err
	}
	return m, v.ValidateParts(m, d.Open)
}

func TestValidateParts(t *testing.T) {
	v := newValidator(t)
	editPart := func(part string, f func(root *etree.Element)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			editXML(t, filepath.Join(dir, part), f)
			rehash(t, dir, part)
		}
	}
	cases := []struct {
		name     string
		purpose  bundle.Purpose
		mutate   func(t *testing.T, dir string)
		want     string
		wantPart string
		wantLine bool
	}{
		{name: "ok/forberedelse", purpose: bundle.Forberedelse},
		{name: "ok/indstilling", purpose: bundle.Indstilling},
		{name: "ok/henvisning", purpose: bundle.Henvisning},
		{name: "ok/sundhedskoordinator-udtalelse", purpose: bundle.SKUdtalelse},
		{name: "ok/klinisk-funktion-attest", purpose: bundle.KlinikAttest},
		{name: "fail/part-longer-than-declared", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			appendTo(t, filepath.Join(dir, "resume.xml"), "\n")
		}, want: "part.size_mismatch", wantPart: "resume.xml"},
		{name: "fail/part-shorter-than-declared", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "laegeattest-le265.pdf")
			b := readFile(t, p)
			os.WriteFile(p, b[:len(b)-1], 0o644)
		}, want: "part.size_mismatch", wantPart: "laegeattest-le265.pdf"},
		{name: "fail/part-changed-same-size", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "laegeattest-le265.pdf")
			b := readFile(t, p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, want: "part.digest_mismatch", wantPart: "laegeattest-le265.pdf"},
		{name: "fail/part-file-missing", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "resume.xml"))
		}, want: "part.missing", wantPart: "resume.xml"},
		{name: "fail/pdf-that-is-not", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "laegeattest-le265.pdf"), []byte("MZ\x90\x00 not a pdf"), 0o644)
			rehash(t, dir, "laegeattest-le265.pdf")
		}, want: "part.media_mismatch", wantPart: "laegeattest-le265.pdf"},
		{name: "fail/document-unknown-element", purpose: bundle.Forberedelse, mutate: editPart("forberedende-del.xml", func(r *etree.Element) {
			r.InsertChildAt(2, etree.NewElement("Ukendt"))
		}), want: "xsd.invalid", wantPart: "forberedende-del.xml", wantLine: true},
		{name: "fail/document-doctype", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "resume.xml")
			b := readFile(t, p)
			b = bytes.Replace(b, []byte("?>"), []byte("?>\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"), 1)
			os.WriteFile(p, b, 0o644)
			rehash(t, dir, "resume.xml")
		}, want: "xml.doctype", wantPart: "resume.xml", wantLine: true},
		{name: "fail/document-about-another-case", purpose: bundle.Forberedelse, mutate: editPart("resume.xml", func(r *etree.Element) {
			find(r, "Sag/Sagsnummer").SetText("KK-2026-999999")
		}), want: "rule.case_mismatch", wantPart: "resume.xml"},
		{name: "fail/document-about-another-citizen", purpose: bundle.Indstilling, mutate: editPart("indstilling.xml", func(r *etree.Element) {
			find(r, "Borger/CPR").SetText("0202024002")
		}), want: "rule.citizen_mismatch", wantPart: "indstilling.xml"},
		{name: "fail/document-of-another-kind", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			b := readFile(t, filepath.Join(dir, "resume.xml"))
			os.WriteFile(filepath.Join(dir, "forberedende-del.xml"), b, 0o644)
			rehash(t, dir, "forberedende-del.xml")
		}, want: "document.namespace", wantPart: "forberedende-del.xml"},
		{name: "fail/indstilling-type-without-its-details", purpose: bundle.Indstilling, mutate: editPart("indstilling.xml", func(r *etree.Element) {
			find(r, "Indstillingstype").SetText("fleksjob")
		}), want: "rule.indstilling_details", wantPart: "indstilling.xml"},
		{name: "fail/indstilling-block-of-another-type", purpose: bundle.Indstilling, mutate: editPart("indstilling.xml", func(r *etree.Element) {
			find(r, "Indstillingstype").SetText("jobafklaringsforloeb")
		}), want: "rule.indstilling_details", wantPart: "indstilling.xml"},
		{name: "fail/ressourceforloeb-without-indsats", purpose: bundle.Indstilling, mutate: editPart("indstilling.xml", func(r *etree.Element) {
			r.RemoveChild(find(r, "Indsatser"))
		}), want: "rule.indsats_missing", wantPart: "indstilling.xml"},
		{name: "fail/henvisning-without-consent", purpose: bundle.Henvisning, mutate: editPart("henvisning.xml", func(r *etree.Element) {
			find(r, "Samtykke/Givet").SetText("false")
		}), want: "rule.consent_missing", wantPart: "henvisning.xml"},
		{name: "fail/reference-to-absent-part", purpose: bundle.Forberedelse, mutate: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "resume.xml")
			b := readFile(t, p)
			if !bytes.Contains(b, []byte("<Del>laegeattest-le265.pdf</Del>")) {
				t.Skip("resume has no Del reference to rewrite")
			}
			os.WriteFile(p, bytes.Replace(b, []byte("<Del>laegeattest-le265.pdf</Del>"), []byte("<Del>mangler.pdf</Del>"), 1), 0o644)
			rehash(t, dir, "resume.xml")
		}, want: "rule.part_reference", wantPart: "resume.xml"},
		{name: "fail/period-backwards", purpose: bundle.Forberedelse, mutate: editPart("forberedende-del.xml", func(r *etree.Element) {
			var per *etree.Element
			walkEl(r, func(e *etree.Element) {
				if per == nil && e.Tag == "Periode" && find(e, "Til") != nil {
					per = e
				}
			})
			find(per, "Til").SetText("1990-01-01")
		}), want: "rule.period_order", wantPart: "forberedende-del.xml"},
		{name: "fail/indstilling-other-meeting-date", purpose: bundle.Indstilling, mutate: editPart("indstilling.xml", func(r *etree.Element) {
			find(r, "Moede/Dato").SetText("2026-01-05")
		}), want: "rule.meeting_mismatch", wantPart: "indstilling.xml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, m := writeExample(t, tc.purpose, false)
			if tc.mutate != nil {
				tc.mutate(t, dir)
			}
			_, err := validateDir(t, v, dir)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			found := false
			for _, e := range errs.Flatten(err) {
				if e.Code == tc.want && e.Part == tc.wantPart && (!tc.wantLine || e.Line > 0) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %s in %s (line: %v), got:\n%v", tc.want, tc.wantPart, tc.wantLine, err)
			}
			assertNoCPR(t, err, m.Citizen.CPR)
			assertNoCPR(t, err, "0202024002")
			if strings.Contains(err.Error(), "root:") {
				t.Fatalf("file content leaked into error: %v", err)
			}
		})
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func TestLargeBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("large bundle: skipped in -short mode")
	}
	v := newValidator(t)
	dir, m := writeExample(t, bundle.Forberedelse, true, largeOpt)
	var big bool
	for _, p := range m.Parts {
		if p.Size >= 20<<20 {
			big = true
		}
	}
	if !big {
		t.Fatal("large example has no attachment of 20 MiB or more")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(filepath.Join(dir, "forberedende-del.xml")); err != nil {
		t.Fatal(err)
	}
	if n := countElements(doc.Root()); n < 5000 {
		t.Fatalf("large forberedende del has %d elements, want >= 5000", n)
	}
	d, _ := bundle.OpenDir(dir)
	defer d.Close()
	data, _ := d.ReadManifest(1 << 20)
	got, _, err := v.VerifyManifest(data, trust(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateParts(got, d.Open); err != nil {
		t.Fatal(err)
	}
}

func countElements(e *etree.Element) int {
	n := 1
	for _, c := range e.ChildElements() {
		n += countElements(c)
	}
	return n
}

func TestDirRefusesEscapes(t *testing.T) {
	dir, _ := writeExample(t, bundle.Indstilling, false)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	d, err := bundle.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, id := range []string{"../secret.txt", "/etc/passwd", "..", ".hidden", "link.txt", "a/b.xml"} {
		if r, err := d.Open(id); err == nil {
			r.Close()
			t.Errorf("Open(%q) succeeded", id)
		}
	}
	if !slices.Contains([]bool{bundle.ValidPartID("indstilling.xml")}, true) {
		t.Fatal("a normal part ID is refused")
	}
}

func walkEl(e *etree.Element, f func(*etree.Element)) {
	f(e)
	for _, c := range e.ChildElements() {
		walkEl(c, f)
	}
}
