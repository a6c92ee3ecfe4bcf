package sample

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// The PDFs are written by hand: PDF 1.4, one page, the standard Helvetica
// font with WinAnsiEncoding, uncompressed streams and a classic xref table
// whose offsets are computed exactly, so any reader opens them without
// repairing. The large scanning's image stream is generated while writing.

// pdfObject is one indirect object. A stream object has stream set and its
// data either in data or produced by gen (exactly n bytes).
type pdfObject struct {
	dict   string // dictionary entries, without << >> and without /Length
	stream bool
	data   []byte
	n      int64
	gen    func(w io.Writer) error
}

// segment is a run of output bytes: fixed, or n generated ones.
type segment struct {
	b   []byte
	n   int64
	gen func(w io.Writer) error
}

// pdfFile lays out objects 1..len(objs); object 1 must be the catalog and
// info the object number of the document information dictionary.
func pdfFile(objs []pdfObject, info int) (size int64, write func(w io.Writer) error) {
	var segs []segment
	var pos int64
	add := func(s segment) {
		if s.gen == nil {
			s.n = int64(len(s.b))
		}
		segs = append(segs, s)
		pos += s.n
	}
	add(segment{b: []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")})
	offsets := make([]int64, len(objs))
	for i, o := range objs {
		offsets[i] = pos
		if !o.stream {
			add(segment{b: fmt.Appendf(nil, "%d 0 obj\n<< %s >>\nendobj\n", i+1, o.dict)})
			continue
		}
		n := int64(len(o.data))
		if o.gen != nil {
			n = o.n
		}
		dict := strings.TrimSpace(o.dict + fmt.Sprintf(" /Length %d", n))
		add(segment{b: fmt.Appendf(nil, "%d 0 obj\n<< %s >>\nstream\n", i+1, dict)})
		if o.gen != nil {
			add(segment{n: n, gen: o.gen})
		} else {
			add(segment{b: o.data})
		}
		add(segment{b: []byte("\nendstream\nendobj\n")})
	}
	var x bytes.Buffer
	fmt.Fprintf(&x, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&x, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&x, "trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, info, pos)
	add(segment{b: x.Bytes()})

	return pos, func(w io.Writer) error {
		for _, s := range segs {
			if s.gen == nil {
				if _, err := w.Write(s.b); err != nil {
					return err
				}
				continue
			}
			cw := &countingWriter{w: w}
			if err := s.gen(cw); err != nil {
				return err
			}
			if cw.n != s.n {
				return fmt.Errorf("sample: generated stream of %d bytes, want %d", cw.n, s.n)
			}
		}
		return nil
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// pdfString renders s as a PDF literal string in WinAnsiEncoding: Latin-1
// letters (æ, ø, å, é, §) as octal escapes, a few typographic characters
// mapped, anything else as "?".
func pdfString(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r >= 0xa0 && r <= 0xff:
			fmt.Fprintf(&b, "\\%03o", r)
		case r == '–':
			b.WriteString(`\226`)
		case r == '—':
			b.WriteString(`\227`)
		case r == '’':
			b.WriteString(`\222`)
		case r == '€':
			b.WriteString(`\200`)
		default:
			b.WriteByte('?')
		}
	}
	b.WriteByte(')')
	return b.String()
}

const helvetica = "/Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding"

// le265PDF is a one-page rendering of the GP's LÆ 265 for the case.
func (c *caseData) le265PDF() []byte {
	lines := []string{
		"Lægeattest LÆ 265 – til brug for rehabiliteringsteamet",
		"FIKTIVT EKSEMPEL – genereret testmateriale om en opdigtet person",
		"",
		"Borger: " + c.p.Name + ", CPR-nr. " + formatCPR(c.p.CPR),
		"Udstedt af: " + c.p.GP.Name + " (SOR " + c.p.GP.SOR + ", lokationsnr. " + c.p.GP.GLN + ")",
		"Dato: " + danishDate(c.attestDate) + ". Attesten bygger på konsultation samme dag.",
		"",
		"1. Helbredsforhold: Kroniske lænderygsmerter (DM54.5), diskusprolaps L5/S1 uden",
		"   nerverodspåvirkning, og moderat depression (DF32.1) i medicinsk behandling.",
		"2. Skånehensyn: Ingen tunge løft, vekslende arbejdsstillinger, gradvis optrapning.",
		c.t("3. Borgerens perspektiv: {navn} ønsker lettere arbejde på nedsat tid."),
		"4. Andre forhold: Økonomisk pres; god støtte fra familien.",
		"",
		"Vurdering: Depressionen er aktuelt den væsentligste begrænsning. Prognosen for",
		"en delvis arbejdsevne er god ved fortsat behandling.",
	}
	var content strings.Builder
	content.WriteString("BT\n/F1 13 Tf\n17 TL\n56 786 Td\n")
	for i, l := range lines {
		if i == 1 {
			content.WriteString("/F1 10 Tf\n14 TL\n")
		}
		if l != "" {
			content.WriteString(pdfString(l) + " Tj\n")
		}
		content.WriteString("T*\n")
	}
	content.WriteString("ET\n")
	objs := []pdfObject{
		{dict: "/Type /Catalog /Pages 2 0 R"},
		{dict: "/Type /Pages /Kids [3 0 R] /Count 1"},
		{dict: "/Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R"},
		{dict: "", stream: true, data: []byte(content.String())},
		{dict: helvetica},
		{dict: "/Title " + pdfString("Lægeattest LÆ 265 (fiktivt eksempel)") + " /Author " + pdfString(c.p.GP.Name) +
			" /Producer (rehabgw sample) /CreationDate (D:" + c.attestDate.Format("20060102") + ")"},
	}
	_, write := pdfFile(objs, 6)
	var b bytes.Buffer
	_ = write(&b) // a bytes.Buffer never fails
	return b.Bytes()
}

// Scanning image: 4096 × 5120 8-bit grey pixels, exactly 20 MiB of
// pseudo-random data, so the file is just over 20 MiB.
const (
	scanWidth  = 4096
	scanHeight = 5120
)

// scanningPart is the large attachment: a one-page PDF holding a "scanned"
// image of pseudo-random grey pixels from a ChaCha8 generator seeded by the
// case number, streamed while writing.
func (c *caseData) scanningPart() Part {
	seed := sha256.Sum256([]byte("rehabgw/sample/bilag-scanning|" + c.p.CaseID))
	n := int64(scanWidth * scanHeight)
	content := "q\n515 0 0 644 40 150 cm\n/Im1 Do\nQ\nBT\n/F1 10 Tf\n40 120 Td\n" +
		pdfString("Scanning af journalmateriale – fiktivt testbilag, sag "+c.p.CaseID) + " Tj\nET\n"
	objs := []pdfObject{
		{dict: "/Type /Catalog /Pages 2 0 R"},
		{dict: "/Type /Pages /Kids [3 0 R] /Count 1"},
		{dict: "/Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> /Contents 4 0 R"},
		{dict: "", stream: true, data: []byte(content)},
		{dict: helvetica},
		{dict: fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8", scanWidth, scanHeight),
			stream: true, n: n, gen: randomBytes(seed, n)},
		{dict: "/Title " + pdfString("Scanning af journalmateriale (fiktivt eksempel)") + " /Producer (rehabgw sample)"},
	}
	size, write := pdfFile(objs, 7)
	return Part{ID: IDScanning, Kind: "bilag", MediaType: "application/pdf", Size: size, Write: write}
}

// randomBytes writes n bytes from a ChaCha8 stream with the given seed,
// 64 KiB at a time; every call starts the stream afresh.
func randomBytes(seed [32]byte, n int64) func(w io.Writer) error {
	return func(w io.Writer) error {
		rng := rand.NewChaCha8(seed)
		buf := make([]byte, 64<<10)
		for left := n; left > 0; {
			chunk := buf
			if int64(len(chunk)) > left {
				chunk = chunk[:left]
			}
			_, _ = rng.Read(chunk) // never fails
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			left -= int64(len(chunk))
		}
		return nil
	}
}
