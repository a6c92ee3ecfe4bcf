package sample

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/internal/testenv"
)

var dump = flag.String("dump", "", "also write the generated parts into this directory, one subdirectory per purpose and size")

var schemaDir = filepath.Join("..", "..", "..", "schemas")

var (
	partIDRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_\-]{0,79}(\.[A-Za-z0-9]{1,8})?$`)
	kinds      = map[string]bool{"forberedende-del": true, "resume": true, "indstilling": true, "henvisning": true, "sundhedskoordinator-udtalelse": true, "speciallaegeattest": true, "laegeattest": true, "bilag": true}
	mediaTypes = map[string]bool{"application/xml": true, "application/pdf": true, "text/plain": true, "image/jpeg": true, "image/png": true}
	xmlKinds   = map[string]string{ // kind -> root element
		"forberedende-del":              "ForberedendeDel",
		"resume":                        "Resume",
		"indstilling":                   "Indstilling",
		"henvisning":                    "Henvisning",
		"sundhedskoordinator-udtalelse": "SundhedskoordinatorUdtalelse",
		"speciallaegeattest":            "Speciallaegeattest",
	}
)

var wantParts = map[string][]string{
	PurposeForberedelse: {IDForberedendeDel, IDResume, IDLaegeattest},
	PurposeIndstilling:  {IDIndstilling},
	PurposeHenvisning:   {IDHenvisning, IDLaegeattest},
	PurposeSKUdtalelse:  {IDSKUdtalelse},
	PurposeKFAttest:     {IDSpeciallaege},
}

type sizeCase struct {
	name  string
	large bool
}

var sizes = []sizeCase{{"normal", false}, {"large", true}}

// TestParts generates every purpose in both sizes and checks every part:
// the XML documents validate with xmllint against their schema, hold the
// manifest's case and citizen at the fixed paths and are plain (no
// comments, DOCTYPE or processing instructions); the PDFs are well formed;
// Size is the number of bytes Write produces; large bundles hold 5,000+
// element documents and an attachment of at least 20 MiB.
func TestParts(t *testing.T) {
	xmllint := testenv.RequireTool(t, "xmllint")
	for _, purpose := range Purposes() {
		for _, sz := range sizes {
			t.Run("ok/"+purpose+"/"+sz.name, func(t *testing.T) {
				p := DefaultParams(purpose)
				p.Large = sz.large
				parts, err := Parts(p)
				if err != nil {
					t.Fatal(err)
				}
				want := append([]string(nil), wantParts[purpose]...)
				if sz.large {
					want = append(want, IDScanning)
				}
				if got := partIDs(parts); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("parts = %v, want %v", got, want)
				}
				dir := t.TempDir()
				if *dump != "" {
					dir = filepath.Join(*dump, purpose+"-"+sz.name)
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				large := false
				for _, pt := range parts {
					if !partIDRe.MatchString(pt.ID) || !kinds[pt.Kind] || !mediaTypes[pt.MediaType] {
						t.Errorf("%s: bad ID, kind %q or media type %q", pt.ID, pt.Kind, pt.MediaType)
					}
					path := filepath.Join(dir, pt.ID)
					n := writeFile(t, path, pt)
					if n != pt.Size {
						t.Errorf("%s: Size = %d, Write wrote %d bytes", pt.ID, pt.Size, n)
					}
					if root, ok := xmlKinds[pt.Kind]; ok {
						if pt.MediaType != "application/xml" {
							t.Errorf("%s: media type %s", pt.ID, pt.MediaType)
						}
						data, err := os.ReadFile(path)
						if err != nil {
							t.Fatal(err)
						}
						elements := checkPlainXML(t, pt.ID, data)
						checkHeader(t, pt.ID, data, root, p)
						xmllintValidate(t, xmllint, pt.Kind, path)
						if sz.large && elements < 5000 {
							t.Errorf("%s: %d elements, want at least 5,000", pt.ID, elements)
						}
						if !sz.large && elements >= 1000 {
							t.Errorf("%s: %d elements in a normal document", pt.ID, elements)
						}
						continue
					}
					if pt.MediaType == "application/pdf" {
						checkPDF(t, path)
					}
					if pt.Size >= LargeAttachmentMin {
						large = true
					}
				}
				if large != sz.large {
					t.Errorf("attachment of >= 20 MiB present: %v, want %v", large, sz.large)
				}
			})
		}
	}
}

// TestDeterministic: two generations give the same bytes, and one part's
// Write gives the same bytes twice.
func TestDeterministic(t *testing.T) {
	for _, purpose := range Purposes() {
		for _, sz := range sizes {
			t.Run("ok/"+purpose+"/"+sz.name, func(t *testing.T) {
				p := DefaultParams(purpose)
				p.Large = sz.large
				a, err := Parts(p)
				if err != nil {
					t.Fatal(err)
				}
				b, err := Parts(p)
				if err != nil {
					t.Fatal(err)
				}
				for i := range a {
					ha, hb := digest(t, a[i]), digest(t, b[i])
					if ha != hb || a[i].Size != b[i].Size {
						t.Errorf("%s: two generations differ: %s / %s", a[i].ID, ha, hb)
					}
					if again := digest(t, a[i]); again != ha {
						t.Errorf("%s: a second Write differs", a[i].ID)
					}
				}
			})
		}
	}
}

// TestSchemaRejects proves the schema check is not vacuous: a generated
// document with one wrong value is refused by xmllint, naming the element.
func TestSchemaRejects(t *testing.T) {
	xmllint := testenv.RequireTool(t, "xmllint")
	cases := []struct {
		name, purpose, id, old, new, want string
	}{
		{"fail/indstilling/indstillingstype-enumeration", PurposeIndstilling, IDIndstilling,
			"<Indstillingstype>ressourceforloeb</Indstillingstype>", "<Indstillingstype>midlertidig-pension</Indstillingstype>", "Indstillingstype"},
		{"fail/indstilling/ressourceforloeb-over-36-maaneder", PurposeIndstilling, IDIndstilling,
			"<VarighedMaaneder>24</VarighedMaaneder>", "<VarighedMaaneder>48</VarighedMaaneder>", "VarighedMaaneder"},
		{"fail/indstilling/spor-enumeration", PurposeIndstilling, IDIndstilling,
			"<Spor>social</Spor>", "<Spor>oekonomi</Spor>", "Spor"},
		{"fail/indstilling/teamrolle-enumeration", PurposeIndstilling, IDIndstilling,
			"<Rolle>sundhed</Rolle>", "<Rolle>psykiatri</Rolle>", "Rolle"},
		{"fail/indstilling/cpr-pattern", PurposeIndstilling, IDIndstilling,
			"<CPR>1408812346</CPR>", "<CPR>140881-2346</CPR>", "CPR"},
		{"fail/henvisning/icd10-without-sks-prefix", PurposeHenvisning, IDHenvisning,
			"<Kode>DF32.1</Kode>", "<Kode>F32.1</Kode>", "Kode"},
		{"fail/henvisning/duplicate-question-number", PurposeHenvisning, IDHenvisning,
			`<Spoergsmaal nr="2">`, `<Spoergsmaal nr="1">`, "Spoergsmaal"},
		{"fail/speciallaegeattest/autorisations-id", PurposeKFAttest, IDSpeciallaege,
			"<AutorisationsID>4KX7R</AutorisationsID>", "<AutorisationsID>4kx7</AutorisationsID>", "AutorisationsID"},
		{"fail/sundhedskoordinator-udtalelse/faggruppe", PurposeSKUdtalelse, IDSKUdtalelse,
			"<Faggruppe>laege</Faggruppe>", "<Faggruppe>sygeplejerske</Faggruppe>", "Faggruppe"},
		{"fail/forberedende-del/ydelse-enumeration", PurposeForberedelse, IDForberedendeDel,
			"<Ydelse>sygedagpenge</Ydelse>", "<Ydelse>dagpenge</Ydelse>", "Ydelse"},
		{"fail/resume/missing-sagsnummer", PurposeForberedelse, IDResume,
			"<Sagsnummer>KK-2026-004417</Sagsnummer>", "", "Sag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := Parts(DefaultParams(tc.purpose))
			if err != nil {
				t.Fatal(err)
			}
			var data []byte
			kind := ""
			for _, pt := range parts {
				if pt.ID == tc.id {
					var b bytes.Buffer
					if err := pt.Write(&b); err != nil {
						t.Fatal(err)
					}
					data, kind = b.Bytes(), pt.Kind
				}
			}
			if !bytes.Contains(data, []byte(tc.old)) {
				t.Fatalf("%s does not contain %q", tc.id, tc.old)
			}
			path := filepath.Join(t.TempDir(), tc.id)
			if err := os.WriteFile(path, bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(xmllint, "--noout", "--schema", filepath.Join(schemaDir, kind+"-v1.xsd"), path).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("xmllint accepted the broken document (err %v): %s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("xmllint output does not name %s:\n%s", tc.want, out)
			}
		})
	}
}

// TestCaseConsistency: the documents of one case agree: the attest answers
// exactly the henvisning's questions, and the forberedende del and resumé
// reference the LÆ 265 part that travels with them.
func TestCaseConsistency(t *testing.T) {
	root := func(purpose, id string) *etree.Element {
		t.Helper()
		parts, err := Parts(DefaultParams(purpose))
		if err != nil {
			t.Fatal(err)
		}
		for _, pt := range parts {
			if pt.ID == id {
				var b bytes.Buffer
				if err := pt.Write(&b); err != nil {
					t.Fatal(err)
				}
				d := etree.NewDocument()
				if err := d.ReadFromBytes(b.Bytes()); err != nil {
					t.Fatal(err)
				}
				return d.Root()
			}
		}
		t.Fatalf("no part %s", id)
		return nil
	}
	var questions, answers []string
	for _, q := range root(PurposeHenvisning, IDHenvisning).SelectElements("Spoergsmaal") {
		questions = append(questions, q.SelectAttrValue("nr", ""))
	}
	for _, a := range root(PurposeKFAttest, IDSpeciallaege).SelectElements("Svar") {
		answers = append(answers, a.SelectAttrValue("spoergsmaal", ""))
	}
	if strings.Join(questions, ",") != strings.Join(answers, ",") || len(questions) == 0 {
		t.Errorf("henvisning asks %v, speciallægeattest answers %v", questions, answers)
	}
	for _, id := range []string{IDForberedendeDel, IDResume} {
		found := false
		for _, del := range root(PurposeForberedelse, id).FindElements("//Del") {
			found = found || del.Text() == IDLaegeattest
		}
		if !found {
			t.Errorf("%s does not reference %s", id, IDLaegeattest)
		}
	}
	ind := root(PurposeIndstilling, IDIndstilling)
	if got := ind.FindElement("Moede/Dato").Text(); got != "2026-03-10" {
		t.Errorf("meeting date %s", got)
	}
	spor := map[string]bool{}
	for _, s := range ind.FindElements("Indsatser/Indsats/Spor") {
		spor[s.Text()] = true
	}
	if len(spor) != 3 || ind.FindElement("Mentor") == nil {
		t.Errorf("indstilling: tracks %v, mentor %v; want all three and a mentor", spor, ind.FindElement("Mentor") != nil)
	}
}

func TestDefaultParams(t *testing.T) {
	p := DefaultParams(PurposeForberedelse)
	if !glnValid(p.GP.GLN) {
		t.Errorf("GLN %s fails the GS1 check digit", p.GP.GLN)
	}
	if mod11(p.CPR) {
		t.Errorf("the sample CPR number passes modulus 11; it is meant not to")
	}
	if (p.CPR[9]-'0')%2 != 0 {
		t.Errorf("the sample citizen is meant to be a woman")
	}
	if a := ageAt(p.CPR, p.MeetingDate); a != 44 {
		t.Errorf("age at the meeting %d, want 44", a)
	}
	if p.MeetingDate.Weekday() != time.Tuesday {
		t.Errorf("meeting on a %s", p.MeetingDate.Weekday())
	}
	if p.Created.Location().String() != "Europe/Copenhagen" {
		t.Errorf("Created in %s", p.Created.Location())
	}
	// Each step happens in the order of the process.
	order := []string{PurposeForberedelse, PurposeSKUdtalelse, PurposeIndstilling, PurposeHenvisning, PurposeKFAttest}
	for i := 1; i < len(order); i++ {
		if !DefaultParams(order[i-1]).Created.Before(DefaultParams(order[i]).Created) {
			t.Errorf("%s is not created before %s", order[i-1], order[i])
		}
	}
	if !DefaultParams(PurposeSKUdtalelse).Created.Before(p.MeetingDate.AddDate(0, 0, 1)) {
		t.Errorf("the sundhedskoordinator's statement comes after the meeting")
	}
}

func TestParamsRejected(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Params)
	}{
		{"fail/unknown-purpose", func(p *Params) { p.Purpose = "indsatsdel" }},
		{"fail/cpr-with-hyphen", func(p *Params) { p.CPR = "140881-2346" }},
		{"fail/case-id-pattern", func(p *Params) { p.CaseID = "sag 17" }},
		{"fail/empty-name", func(p *Params) { p.Name = "" }},
		{"fail/name-with-leading-space", func(p *Params) { p.Name = " Mette" }},
		{"fail/gln-length", func(p *Params) { p.GP.GLN = "579000177421" }},
		{"fail/no-meeting-date", func(p *Params) { p.MeetingDate = time.Time{} }},
		{"fail/no-created", func(p *Params) { p.Created = time.Time{} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams(PurposeIndstilling)
			tc.edit(&p)
			_, err := Parts(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "2346") {
				t.Errorf("error message contains the CPR number: %v", err)
			}
		})
	}
	t.Run("ok/male-citizen-other-municipality", func(t *testing.T) {
		p := DefaultParams(PurposeKFAttest)
		p.CPR, p.Name, p.Municipality, p.Region = "0203954517", "Jonas Berg Hansen", "Aarhus Kommune", "Region Midtjylland"
		parts, err := Parts(p)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := parts[0].Write(&b); err != nil {
			t.Fatal(err)
		}
		s := b.String()
		if !strings.Contains(s, "Jonas") || strings.Contains(s, "Mette") || !strings.Contains(s, "Region Midtjylland") || !strings.Contains(s, "31-årig") {
			t.Errorf("content does not follow the parameters:\n%s", s)
		}
	})
}

// --- helpers ---------------------------------------------------------------

func partIDs(parts []Part) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p.ID)
	}
	return out
}

func writeFile(t *testing.T, path string, pt Part) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cw := &countingWriter{w: f}
	if err := pt.Write(cw); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return cw.n
}

func digest(t *testing.T, pt Part) string {
	t.Helper()
	h := sha256.New()
	if err := pt.Write(h); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkPlainXML checks the declaration, indentation, and that the only
// markup besides elements is the XML declaration; it returns the element
// count.
func checkPlainXML(t *testing.T, id string, data []byte) int {
	t.Helper()
	const decl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	if !bytes.HasPrefix(data, []byte(decl)) {
		t.Errorf("%s: does not start with %q", id, decl)
	}
	if !bytes.HasSuffix(data, []byte(">\n")) || bytes.Contains(data, []byte("\t")) || bytes.Contains(data, []byte("\r")) {
		t.Errorf("%s: not newline-terminated or contains tabs/CR", id)
	}
	if !bytes.Contains(data, []byte("\n  <Sag>\n    <Sagsnummer>")) {
		t.Errorf("%s: not indented with two spaces", id)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	elements, tokens := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			elements++
		case xml.Comment:
			t.Errorf("%s: comment", id)
		case xml.Directive:
			t.Errorf("%s: directive (DOCTYPE)", id)
		case xml.ProcInst:
			if tokens != 0 || v.Target != "xml" {
				t.Errorf("%s: processing instruction %s", id, v.Target)
			}
		}
		tokens++
	}
	return elements
}

// checkHeader checks the fixed paths the gateway compares with the manifest.
func checkHeader(t *testing.T, id string, data []byte, root string, p Params) {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(data); err != nil {
		t.Fatal(err)
	}
	r := d.Root()
	if r.Tag != root || r.NamespaceURI() != "urn:rehabgw:"+strings.TrimSuffix(id, ".xml")+":v1" || r.SelectAttrValue("version", "") != "1" {
		t.Errorf("%s: root %s {%s} version %q", id, r.Tag, r.NamespaceURI(), r.SelectAttrValue("version", ""))
	}
	if e := r.FindElement("Sag/Sagsnummer"); e == nil || e.Text() != p.CaseID {
		t.Errorf("%s: Sag/Sagsnummer is not the case ID", id)
	}
	if e := r.FindElement("Borger/CPR"); e == nil || e.Text() != p.CPR {
		t.Errorf("%s: Borger/CPR is not the citizen's", id)
	}
}

func xmllintValidate(t *testing.T, xmllint, kind, path string) {
	t.Helper()
	out, err := exec.Command(xmllint, "--noout", "--schema", filepath.Join(schemaDir, kind+"-v1.xsd"), path).CombinedOutput()
	if err != nil {
		t.Errorf("xmllint %s: %v\n%s", filepath.Base(path), err, firstLines(string(out), 10))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

var xrefEntry = regexp.MustCompile(`^(\d{10}) (\d{5}) ([nf]) \n$`)

// checkPDF checks the header, trailer and every xref offset of a PDF file
// without reading the whole file into memory.
func checkPDF(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 9)
	if _, err := f.ReadAt(head, 0); err != nil || string(head) != "%PDF-1.4\n" {
		t.Fatalf("%s: header %q", path, head)
	}
	tailLen := min(st.Size(), 4096)
	tail := make([]byte, tailLen)
	if _, err := f.ReadAt(tail, st.Size()-tailLen); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(tail, []byte("\n%%EOF\n")) {
		t.Fatalf("%s: no %%%%EOF", path)
	}
	i := bytes.LastIndex(tail, []byte("startxref\n"))
	if i < 0 {
		t.Fatalf("%s: no startxref", path)
	}
	xrefAt, err := strconv.ParseInt(string(bytes.Fields(tail[i+len("startxref\n"):])[0]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]byte, st.Size()-xrefAt)
	if _, err := f.ReadAt(x, xrefAt); err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscanf(string(x), "xref\n0 %d\n", &n); err != nil {
		t.Fatalf("%s: xref header: %v", path, err)
	}
	body := x[bytes.IndexByte(x[5:], '\n')+6:]
	for obj := range n {
		m := xrefEntry.FindSubmatch(body[obj*20 : obj*20+20])
		if m == nil {
			t.Fatalf("%s: xref entry %d malformed: %q", path, obj, body[obj*20:obj*20+20])
		}
		if obj == 0 {
			continue
		}
		off, _ := strconv.ParseInt(string(m[1]), 10, 64)
		want := fmt.Sprintf("%d 0 obj\n", obj)
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, off); err != nil || string(got) != want {
			t.Errorf("%s: xref entry %d points at %q", path, obj, got)
		}
	}
	if !bytes.Contains(body[n*20:], []byte(fmt.Sprintf("trailer\n<< /Size %d /Root 1 0 R", n))) {
		t.Errorf("%s: trailer does not match the xref", path)
	}
}

func glnValid(s string) bool {
	sum := 0
	for i := range 12 {
		d := int(s[11-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return (10-sum%10)%10 == int(s[12]-'0')
}

func mod11(cpr string) bool {
	w := []int{4, 3, 2, 7, 6, 5, 4, 3, 2, 1}
	sum := 0
	for i, c := range cpr {
		sum += int(c-'0') * w[i]
	}
	return sum%11 == 0
}

// TestIndstillingOutcomes: every Indstillingstype can be expressed with its
// outcome block (the generator itself only writes a ressourceforløb).
func TestIndstillingOutcomes(t *testing.T) {
	xmllint := testenv.RequireTool(t, "xmllint")
	parts, err := Parts(DefaultParams(PurposeIndstilling))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := parts[0].Write(&b); err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)<RessourceforloebDetaljer>.*</RessourceforloebDetaljer>`)
	cases := []struct{ typ, detail string }{
		{"jobafklaringsforloeb", `<JobafklaringsforloebDetaljer><VarighedMaaneder>6</VarighedMaaneder></JobafklaringsforloebDetaljer>`},
		{"fleksjob", `<FleksjobDetaljer><Jobtype>Receptionist i sundhedshus</Jobtype><TimerPrUge>12.5</TimerPrUge><Skaanehensyn>Stillingsskift og pauser efter behov.</Skaanehensyn></FleksjobDetaljer>`},
		{"tilskud-selvstaendige", `<TilskudSelvstaendigeDetaljer><Virksomhed>Frisørsalonen</Virksomhed><TimerPrUge>20</TimerPrUge><Beskrivelse>Tilskud til fortsat drift med nedsat tid.</Beskrivelse></TilskudSelvstaendigeDetaljer>`},
		{"foertidspension", `<FoertidspensionDetaljer><FagligForklaring>Arbejdsevnen er væsentligt og varigt nedsat.</FagligForklaring><BeskaeftigelsesmaessigeForhold>Afprøvet i praktik.</BeskaeftigelsesmaessigeForhold><SocialeForhold>Stabilt netværk.</SocialeForhold><HelbredsmaessigeForhold>Behandlingsmuligheder udtømt.</HelbredsmaessigeForhold></FoertidspensionDetaljer>`},
		{"anden-indsats", `<AndenIndsatsDetaljer><Aarsag>lab-muligheder-ikke-udtoemt</Aarsag><Uddybning>Virksomhedsrettet indsats efter LAB.</Uddybning></AndenIndsatsDetaljer>`},
		{"tilbagesendelse", `<TilbagesendelseDetaljer><Aarsag>mere-dokumentation</Aarsag><Aarsag>behandling-skal-afsluttes</Aarsag><Uddybning>Afventer speciallægeattest.</Uddybning></TilbagesendelseDetaljer>`},
	}
	for _, tc := range cases {
		t.Run("ok/"+tc.typ, func(t *testing.T) {
			doc := block.ReplaceAll(b.Bytes(), []byte(tc.detail))
			doc = bytes.Replace(doc, []byte("<Indstillingstype>ressourceforloeb<"), []byte("<Indstillingstype>"+tc.typ+"<"), 1)
			path := filepath.Join(t.TempDir(), IDIndstilling)
			if err := os.WriteFile(path, doc, 0o644); err != nil {
				t.Fatal(err)
			}
			xmllintValidate(t, xmllint, "indstilling", path)
		})
	}
}
