package xmlsig

import "testing"

// Both benchmarks use an RSA-2048 leaf issued by the root and a manifest of
// about 100 elements (29 parts), the size the bundle manifest has in practice.

func BenchmarkSign(b *testing.B) {
	p := getPKI(b)
	s := p.signer(b, p.leafRSA)
	doc := manifest(defaultRootID, 29)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	p := getPKI(b)
	signed, err := p.signer(b, p.leafRSA).Sign(manifest(defaultRootID, 29))
	if err != nil {
		b.Fatal(err)
	}
	pol := p.policy()
	b.SetBytes(int64(len(signed)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(signed, pol); err != nil {
			b.Fatal(err)
		}
	}
}
