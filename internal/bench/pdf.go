package bench

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
)

// scanWidth is the width in pixels of the generated scans.
const scanWidth = 1024

// WritePDF writes a one-page PDF 1.4 "scan" to w: an 8-bit grey image of
// imageBytes pseudo-random pixels (a ChaCha8 stream seeded by seed, so it is
// incompressible like real scanned images and deterministic), generated
// while writing in 64 KiB chunks, never held in memory. The xref offsets are
// exact, so readers open it without repair. imageBytes must be a multiple of
// 1024. It returns the number of bytes written.
func WritePDF(w io.Writer, imageBytes int64, seed string) (int64, error) {
	if imageBytes <= 0 || imageBytes%scanWidth != 0 {
		return 0, fmt.Errorf("bench: image size %d is not a positive multiple of %d", imageBytes, scanWidth)
	}
	cw := &counter{w: w}
	var offsets []int64
	obj := func(body string) error {
		offsets = append(offsets, cw.n)
		_, err := fmt.Fprintf(cw, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
		return err
	}
	content := "q\n515 0 0 644 40 150 cm\n/Im1 Do\nQ\nBT\n/F1 10 Tf\n40 120 Td\n(Scanning af journalmateriale - fiktivt testbilag) Tj\nET\n"
	steps := []func() error{
		func() error { _, err := io.WriteString(cw, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"); return err },
		func() error { return obj("<< /Type /Catalog /Pages 2 0 R >>") },
		func() error { return obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>") },
		func() error {
			return obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> /Contents 4 0 R >>")
		},
		func() error { return obj(fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", len(content), content)) },
		func() error {
			return obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
		},
		func() error {
			offsets = append(offsets, cw.n)
			if _, err := fmt.Fprintf(cw, "%d 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Length %d >>\nstream\n",
				len(offsets), scanWidth, imageBytes/scanWidth, imageBytes); err != nil {
				return err
			}
			if err := randomBytes(cw, seed, imageBytes); err != nil {
				return err
			}
			_, err := io.WriteString(cw, "\nendstream\nendobj\n")
			return err
		},
		func() error {
			return obj("<< /Title (Scanning af journalmateriale \\(fiktivt eksempel\\)) /Producer (rehabgw bench) >>")
		},
		func() error {
			var x bytes.Buffer
			fmt.Fprintf(&x, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
			for _, off := range offsets {
				fmt.Fprintf(&x, "%010d 00000 n \n", off)
			}
			fmt.Fprintf(&x, "trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, len(offsets), cw.n)
			_, err := cw.Write(x.Bytes())
			return err
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

// randomBytes writes n bytes of a ChaCha8 stream seeded by seed.
func randomBytes(w io.Writer, seed string, n int64) error {
	rng := rand.NewChaCha8(sha256.Sum256([]byte("rehabgw/bench|" + seed)))
	buf := make([]byte, 64<<10)
	for left := n; left > 0; {
		chunk := buf[:min(int64(len(buf)), left)]
		_, _ = rng.Read(chunk) // never fails
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		left -= int64(len(chunk))
	}
	return nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
