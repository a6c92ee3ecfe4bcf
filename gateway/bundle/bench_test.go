package bundle_test

import (
	"path/filepath"
	"testing"

	"github.com/rehabgw/rehabgw/gateway/bundle"
)

// BenchmarkBundleCost reports the cost per bundle of each pipeline step, for
// the typical forberedelse bundle (three documents and a small PDF) and the
// large one (5,000+ element documents, a 20 MiB attachment). make bench
// prints the medians and the ratios.
func BenchmarkBundleCost(b *testing.B) {
	v := newValidator(b)
	tr := trust(b)
	for _, size := range []string{"typical", "large"} {
		var dir string
		var m *bundle.Manifest
		if size == "large" {
			dir, m = writeExample(b, bundle.Forberedelse, true, largeOpt)
		} else {
			dir, m = writeExample(b, bundle.Forberedelse, true)
		}
		signed := readFile(b, filepath.Join(dir, bundle.ManifestFile))
		unsigned, err := m.Document()
		if err != nil {
			b.Fatal(err)
		}
		s := signer(b, "kommune-101")
		d, err := bundle.OpenDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })

		b.Run("validate/"+size, func(b *testing.B) {
			b.SetBytes(m.TotalSize())
			for b.Loop() {
				got, err := v.Manifest(unsigned)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.ValidateParts(got, d.Open); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("sign/"+size, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Sign(unsigned); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("verify-signature/"+size, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := v.VerifyManifest(signed, tr); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("verify+validate/"+size, func(b *testing.B) {
			b.SetBytes(m.TotalSize())
			for b.Loop() {
				got, _, err := v.VerifyManifest(signed, tr)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.ValidateParts(got, d.Open); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
