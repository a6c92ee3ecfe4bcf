package xmlsig

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

type verifyCase struct {
	name   string
	doc    func(t testing.TB, p *testPKI) []byte
	policy func(p *testPKI, pol *Policy) // optional changes to p.policy()
	code   string                        // "" = must verify

	// For accepted documents: what the verified element must hold.
	wantCaseID, wantCPR string
	wantChain           int

	// naive, when set, is a path whose text a naive reader of the raw
	// document would take; the test asserts it is the attacker's value,
	// proving the mutation is a real attack and not a no-op.
	naive string
	// lax asserts that goxmldsig on its own ACCEPTS the document with the
	// given certificate: the rejection is the policy's doing.
	lax func(p *testPKI) *x509.Certificate
}

func leafRSA(p *testPKI) *x509.Certificate { return p.leafRSA.cert }

func signWith(kc func(p *testPKI) keyCert, chain func(p *testPKI) []*x509.Certificate, doc []byte) func(t testing.TB, p *testPKI) []byte {
	return func(t testing.TB, p *testPKI) []byte {
		var c []*x509.Certificate
		if chain != nil {
			c = chain(p)
		}
		k := kc(p)
		out, err := p.signer(t, k, c...).Sign(doc)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		return out
	}
}

func build(spec func(p *testPKI) sigSpec, doc []byte) func(t testing.TB, p *testPKI) []byte {
	return func(t testing.TB, p *testPKI) []byte { return buildSigned(t, doc, spec(p)) }
}

func onSigned(f func(root *etree.Element) *etree.Element) func(t testing.TB, p *testPKI) []byte {
	return func(t testing.TB, p *testPKI) []byte { return mutate(t, signedManifest(t), f) }
}

func raw(s string) func(t testing.TB, p *testPKI) []byte {
	return func(testing.TB, *testPKI) []byte { return []byte(s) }
}

func rsaSpec(p *testPKI) sigSpec {
	return sigSpec{key: p.leafRSA.key, certs: []*x509.Certificate{p.leafRSA.cert}}
}

func specWith(f func(s *sigSpec)) func(p *testPKI) sigSpec {
	return func(p *testPKI) sigSpec {
		s := rsaSpec(p)
		f(&s)
		return s
	}
}

// manifestWithChildID has a second element carrying an ID (c1).
func manifestWithChildID() []byte {
	return bytes.Replace(manifest(defaultRootID, 3), []byte("<Citizen>"), []byte(`<Citizen ID="c1">`), 1)
}

func verifyCases() []verifyCase {
	base := manifest(defaultRootID, 3)
	return []verifyCase{
		// ---------------------------------------------------------------- ok
		{name: "ok/rsa-2048", doc: onSigned(func(r *etree.Element) *etree.Element { return r }),
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/rsa-intermediate-in-keyinfo",
			doc:        signWith(func(p *testPKI) keyCert { return p.leafInter }, func(p *testPKI) []*x509.Certificate { return []*x509.Certificate{p.inter.cert} }, base),
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 3},
		{name: "ok/rsa-intermediate-from-policy",
			doc:        signWith(func(p *testPKI) keyCert { return p.leafInter }, nil, base),
			policy:     func(p *testPKI, pol *Policy) { pol.Intermediates = p.interPool },
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 3},
		{name: "ok/manifest-100-elements", doc: signWith(func(p *testPKI) keyCert { return p.leafRSA }, nil, manifest(defaultRootID, 29)),
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/manifest-898-elements-near-limit", doc: signWith(func(p *testPKI) keyCert { return p.leafRSA }, nil, manifest(defaultRootID, 293)),
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/acceptance-root", doc: signWith(func(p *testPKI) keyCert { return p.leafRSA }, nil, acceptance("a1")),
			policy:     func(p *testPKI, pol *Policy) { pol.Root = acceptanceRoot },
			wantCaseID: origCaseID, wantChain: 2},
		{name: "ok/ecdsa-p256-raw-rs", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.leafEC.key, certs: []*x509.Certificate{p.leafEC.cert}}
		}, base), wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/ecdsa-p384-sha384", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.leafEC384.key, certs: []*x509.Certificate{p.leafEC384.cert}, method: AlgECDSASHA384,
				refs: []refSpec{{digest: AlgSHA384}}}
		}, base), wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/rsa-sha512-digest-sha512", doc: build(specWith(func(s *sigSpec) {
			s.method = AlgRSASHA512
			s.refs = []refSpec{{digest: AlgSHA512}}
		}), base), wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/signature-prefix-dsig", doc: build(specWith(func(s *sigSpec) { s.prefix = "dsig" }), base),
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/signature-default-namespace", doc: build(specWith(func(s *sigSpec) { s.prefix = "-" }), base),
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/exc-c14n-inclusive-namespaces", doc: build(specWith(func(s *sigSpec) {
			s.extra = func(sig *etree.Element) {
				x := sig.FindElement("./SignedInfo/Reference/Transforms").ChildElements()[1]
				in := x.CreateElement("InclusiveNamespaces")
				in.Space = "ec"
				in.CreateAttr("xmlns:ec", NamespaceExcC14N)
				in.CreateAttr("PrefixList", "")
			}
		}), base), wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},

		// Variants that still carry the signed bytes: they verify, and the
		// verified element holds the original values.
		{name: "ok/benign/root-attribute-order-swapped", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.Attr[0], r.Attr[1] = r.Attr[1], r.Attr[0]
			return r
		}), wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/benign/xmlns-ds-hoisted-to-root", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r)
			s.RemoveAttr("xmlns:ds")
			r.CreateAttr("xmlns:ds", NamespaceDSig)
			return r
		}), wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/benign/wrapped-base64-in-keyinfo-and-value", doc: onSigned(func(r *etree.Element) *etree.Element {
			for _, p := range []string{"./Signature/SignatureValue", "./Signature/KeyInfo/X509Data/X509Certificate"} {
				e := r.FindElement(p)
				t := e.Text()
				var b strings.Builder
				for i := 0; i < len(t); i += 64 {
					b.WriteString("\n" + t[i:min(i+64, len(t))])
				}
				e.SetText(b.String() + "\n")
			}
			return r
		}), wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/benign/character-reference-in-value", doc: func(t testing.TB, p *testPKI) []byte {
			return bytes.Replace(signedManifest(t), []byte(origCaseID), []byte("KK&#45;2026&#x2D;0001"), 1)
		}, wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},
		{name: "ok/benign/cdata-in-value", doc: func(t testing.TB, p *testPKI) []byte {
			return bytes.Replace(signedManifest(t), []byte(testCPR), []byte("<![CDATA["+testCPR+"]]>"), 1)
		}, wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},

		// ------------------------------------------ signature wrapping (XSW)
		// Each starts from a correctly signed manifest; the attacker wants
		// the application to read evilCaseID/evilCPR.
		{name: "fail/xsw1/evil-root-signed-original-inside-signature", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r).Copy()
			s.AddChild(r.Copy()) // the whole signed original, signature and all
			return evilRoot(defaultRootID, s)
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw2/evil-root-original-detached-before-signature-same-id", doc: onSigned(func(r *etree.Element) *etree.Element {
			return evilRoot(defaultRootID, withoutSig(r), sigOf(r).Copy())
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw2b/evil-root-original-detached-before-signature-other-id", doc: onSigned(func(r *etree.Element) *etree.Element {
			return evilRoot("m1-evil", withoutSig(r), sigOf(r).Copy())
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw3/evil-copy-same-id-inserted-before-body", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.InsertChildAt(0, evilRoot(defaultRootID))
			return r
		}), code: CodePolicy, naive: "./Manifest/CaseID"},
		{name: "fail/xsw3b/evil-copy-other-id-inserted-before-body", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.InsertChildAt(0, evilRoot("m2"))
			return r
		}), code: CodeInvalid, naive: "./Manifest/CaseID"},
		{name: "fail/xsw4/evil-root-wraps-signed-original-other-id", doc: onSigned(func(r *etree.Element) *etree.Element {
			return evilRoot("m1-evil", r.Copy())
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw4b/evil-root-wraps-signed-original-same-id", doc: onSigned(func(r *etree.Element) *etree.Element {
			return evilRoot(defaultRootID, r.Copy())
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw5/signature-moved-to-evil-root-original-after-it", doc: onSigned(func(r *etree.Element) *etree.Element {
			return evilRoot("m1-evil", sigOf(r).Copy(), withoutSig(r))
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw6/original-inside-signature-after-keyinfo", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r).Copy()
			s.AddChild(withoutSig(r))
			return evilRoot("m1-evil", s)
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw6b/original-inside-signature-after-keyinfo-same-id", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r).Copy()
			s.AddChild(withoutSig(r))
			return evilRoot(defaultRootID, s)
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw7/signed-original-in-extensions-wrapper", doc: onSigned(func(r *etree.Element) *etree.Element {
			ext := etree.NewElement("Extensions")
			ext.AddChild(r.Copy())
			return evilRoot("m1-evil", ext)
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw8/original-in-ds-object-evil-root-keeps-signature", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r).Copy()
			dsChild(s, "Object").AddChild(withoutSig(r))
			return evilRoot("m1-evil", s)
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw8b/original-in-ds-object-same-id", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r).Copy()
			dsChild(s, "Object").AddChild(withoutSig(r))
			return evilRoot(defaultRootID, s)
		}), code: CodePolicy, naive: "./CaseID"},
		{name: "fail/xsw/evil-sibling-copy-after-signature-same-id", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.AddChild(evilRoot(defaultRootID))
			return r
		}), code: CodePolicy, naive: "./Manifest/CaseID"},
		{name: "fail/xsw/evil-value-smuggled-in-ds-object", doc: onSigned(func(r *etree.Element) *etree.Element {
			dsChild(sigOf(r), "Object").AddChild(evilRoot(""))
			return r
		}), code: CodePolicy, naive: ".//Object/Manifest/CaseID", lax: leafRSA},
		{name: "fail/xsw/evil-value-smuggled-in-keyinfo", doc: onSigned(func(r *etree.Element) *etree.Element {
			sigOf(r).FindElement("./KeyInfo").AddChild(evilRoot(""))
			return r
		}), code: CodePolicy, naive: ".//KeyInfo/Manifest/CaseID", lax: leafRSA},
		{name: "fail/xsw/evil-caseid-appended-after-signature", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.CreateElement("CaseID").SetText(evilCaseID)
			return r
		}), code: CodePolicy},
		{name: "fail/xsw/second-id-attribute-prefixed-on-root", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.CreateAttr("xmlns:x", "urn:x")
			r.CreateAttr("x:ID", "m1-evil")
			return r
		}), code: CodePolicy},
		{name: "fail/xsw/root-id-repeated-as-Id-on-child", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.FindElement("./CaseID").CreateAttr("Id", defaultRootID)
			return r
		}), code: CodePolicy},
		{name: "fail/xsw/root-id-repeated-as-id-in-signature", doc: onSigned(func(r *etree.Element) *etree.Element {
			sigOf(r).FindElement("./KeyInfo").CreateAttr("Id", defaultRootID)
			return r
		}), code: CodePolicy},

		// ------------------------------------------ where the signature is
		{name: "fail/no-signature", doc: func(testing.TB, *testPKI) []byte { return base }, code: CodeMissing},
		{name: "fail/signature-in-foreign-namespace", doc: func(t testing.TB, p *testPKI) []byte {
			return bytes.Replace(signedManifest(t), []byte(`xmlns:ds="`+NamespaceDSig+`"`), []byte(`xmlns:ds="urn:evil"`), 1)
		}, code: CodeMissing},
		{name: "fail/signature-relocated-into-child", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r)
			r.RemoveChild(s)
			r.FindElement("./Citizen").AddChild(s)
			return r
		}), code: CodePolicy, lax: leafRSA},
		{name: "fail/signature-not-last-child", doc: onSigned(func(r *etree.Element) *etree.Element {
			s := sigOf(r)
			r.RemoveChild(s)
			r.InsertChildAt(0, s)
			return r
		}), code: CodePolicy, lax: leafRSA},
		{name: "fail/signature-duplicated", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.AddChild(sigOf(r).Copy())
			return r
		}), code: CodePolicy},
		{name: "fail/stray-ds-element-in-body", doc: onSigned(func(r *etree.Element) *etree.Element {
			x := r.FindElement("./Citizen").CreateElement("SignedInfo")
			x.Space = "ds2"
			x.CreateAttr("xmlns:ds2", NamespaceDSig)
			return r
		}), code: CodePolicy},

		// ------------------------------------------------------ references
		{name: "fail/two-references", doc: build(specWith(func(s *sigSpec) { s.refs = []refSpec{{}, {}} }), base),
			code: CodePolicy, lax: leafRSA},
		{name: "fail/two-references-other-element-first", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{uri: "#c1", target: "c1"}, {}}
		}), manifestWithChildID()), code: CodePolicy, lax: leafRSA},
		{name: "fail/reference-empty-uri", doc: build(specWith(func(s *sigSpec) { s.refs = []refSpec{{uri: "EMPTY"}} }), base),
			code: CodePolicy, lax: leafRSA},
		{name: "fail/reference-to-other-element", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{uri: "#c1", target: "c1"}}
		}), manifestWithChildID()), code: CodePolicy},
		{name: "fail/reference-xpointer", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{uri: "#xpointer(id('m1'))"}}
		}), base), code: CodePolicy},
		{name: "fail/transform-extra-xpath", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{transforms: []string{AlgEnveloped, algXPath, AlgExcC14N}}}
		}), base), code: CodePolicy},
		{name: "fail/transforms-reordered", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{transforms: []string{AlgExcC14N, AlgEnveloped}}}
		}), base), code: CodePolicy, lax: leafRSA},
		{name: "fail/transforms-c14n-only", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{transforms: []string{AlgExcC14N}}}
		}), base), code: CodePolicy},
		{name: "fail/transform-c14n11", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{transforms: []string{AlgEnveloped, algC14N11}}}
		}), base), code: CodePolicy},
		{name: "fail/transform-exc-c14n-with-comments", doc: build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{transforms: []string{AlgEnveloped, AlgExcC14NWithComments}}}
		}), base), code: CodePolicy, lax: leafRSA},

		// ------------------------------------------------------ algorithms
		{name: "fail/digest-sha1", doc: build(specWith(func(s *sigSpec) { s.refs = []refSpec{{digest: algSHA1}} }), base),
			code: CodeAlgorithm, lax: leafRSA},
		{name: "fail/signature-method-rsa-sha1", doc: build(specWith(func(s *sigSpec) { s.method = algRSASHA1 }), base),
			code: CodeAlgorithm},
		{name: "fail/signature-method-hmac-sha256", doc: build(specWith(func(s *sigSpec) {
			s.method = algHMACSHA256
			s.hmacKey = []byte("shared secret")
		}), base), code: CodeAlgorithm},
		{name: "fail/c14n-with-comments", doc: build(specWith(func(s *sigSpec) { s.c14n = AlgExcC14NWithComments }), base),
			code: CodeAlgorithm, lax: leafRSA},
		{name: "fail/c14n-1.1", doc: build(specWith(func(s *sigSpec) { s.c14n = algC14N11 }), base),
			code: CodeAlgorithm},
		{name: "fail/signature-method-does-not-match-key", doc: build(specWith(func(s *sigSpec) { s.method = AlgECDSASHA256 }), base),
			code: CodeAlgorithm},
		{name: "fail/ecdsa-der-signature-value", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.leafEC.key, certs: []*x509.Certificate{p.leafEC.cert}, ecdsaDER: true}
		}, base), code: CodeInvalid, lax: func(p *testPKI) *x509.Certificate { return p.leafEC.cert }},

		// --------------------------------------------------------- KeyInfo
		{name: "fail/keyinfo-missing", doc: build(specWith(func(s *sigSpec) { s.noKeyInfo = true }), base),
			code: CodePolicy, lax: leafRSA},
		{name: "fail/keyinfo-empty-x509data", doc: build(specWith(func(s *sigSpec) { s.certs = nil }), base), code: CodePolicy},
		{name: "fail/keyinfo-extra-keyname", doc: build(specWith(func(s *sigSpec) {
			s.afterSign = func(sig *etree.Element) { dsChild(sig.FindElement("./KeyInfo"), "KeyName").SetText("x") }
		}), base), code: CodePolicy, lax: leafRSA},
		{name: "fail/keyinfo-two-x509data", doc: build(specWith(func(s *sigSpec) {
			s.afterSign = func(sig *etree.Element) {
				ki := sig.FindElement("./KeyInfo")
				ki.AddChild(ki.FindElement("./X509Data").Copy())
			}
		}), base), code: CodePolicy},
		{name: "fail/keyinfo-two", doc: build(specWith(func(s *sigSpec) {
			s.afterSign = func(sig *etree.Element) { sig.AddChild(sig.FindElement("./KeyInfo").Copy()) }
		}), base), code: CodePolicy},
		{name: "fail/keyinfo-garbage-certificate", doc: build(specWith(func(s *sigSpec) {
			s.afterSign = func(sig *etree.Element) {
				sig.FindElement("./KeyInfo/X509Data/X509Certificate").SetText("MDEwMTkwMTIzNA==")
			}
		}), base), code: CodePolicy},
		{name: "fail/keyinfo-attacker-cert-same-subject", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.attacker.key, certs: []*x509.Certificate{p.attacker.cert}}
		}, base), code: CodeUntrusted, lax: func(p *testPKI) *x509.Certificate { return p.attacker.cert }},
		{name: "fail/keyinfo-attacker-cert-with-trusted-root-appended", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.attacker.key, certs: []*x509.Certificate{p.attacker.cert, p.root.cert}}
		}, base), code: CodeUntrusted},
		{name: "fail/keyinfo-trusted-cert-signed-by-other-key", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.otherKey, certs: []*x509.Certificate{p.leafRSA.cert}}
		}, base), code: CodeInvalid},
		{name: "fail/keyinfo-substituted-after-signing", doc: func(t testing.TB, p *testPKI) []byte {
			other := signWith(func(p *testPKI) keyCert { return p.leafInter }, nil, base)(t, p)
			cert := parseDoc(t, other).Root().FindElement("./Signature/KeyInfo")
			return mutate(t, signedManifest(t), func(r *etree.Element) *etree.Element {
				s := sigOf(r)
				s.RemoveChild(s.FindElement("./KeyInfo"))
				s.AddChild(cert.Copy())
				return r
			})
		}, policy: func(p *testPKI, pol *Policy) { pol.Intermediates = p.interPool }, code: CodeInvalid},

		// ------------------------------------------------------ certificates
		{name: "fail/cert-expired", doc: signWith(func(p *testPKI) keyCert { return p.leafExpired }, nil, base), code: CodeExpired},
		{name: "fail/cert-not-yet-valid", doc: signWith(func(p *testPKI) keyCert { return p.leafNotYet }, nil, base), code: CodeNotYetValid},
		{name: "fail/clock-after-expiry", doc: onSigned(func(r *etree.Element) *etree.Element { return r }),
			policy: func(p *testPKI, pol *Policy) { pol.Now = func() time.Time { return p.now.Add(365 * 24 * time.Hour) } },
			code:   CodeExpired},
		{name: "fail/weak-rsa-1024", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.leafWeak.key, certs: []*x509.Certificate{p.leafWeak.cert}}
		}, base), code: CodeWeakKey},
		{name: "fail/weak-ecdsa-p224", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.leafEC224.key, certs: []*x509.Certificate{p.leafEC224.cert}}
		}, base), code: CodeWeakKey},
		{name: "fail/untrusted-ca-same-names", doc: signWith(func(p *testPKI) keyCert { return p.leafOtherCA }, nil, base), code: CodeUntrusted},
		{name: "fail/intermediate-missing", doc: signWith(func(p *testPKI) keyCert { return p.leafInter }, nil, base), code: CodeUntrusted},
		{name: "fail/key-usage-without-digital-signature", doc: signWith(func(p *testPKI) keyCert { return p.leafNoSign }, nil, base), code: CodeUntrusted},
		{name: "fail/ca-certificate-as-signer", doc: build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.root.key, certs: []*x509.Certificate{p.root.cert}}
		}, base), code: CodeUntrusted},
		{name: "fail/ext-key-usage-not-allowed", doc: signWith(func(p *testPKI) keyCert { return p.leafEKU }, nil, base),
			policy: func(p *testPKI, pol *Policy) { pol.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection} },
			code:   CodeUntrusted},
		{name: "ok/ext-key-usage-allowed", doc: signWith(func(p *testPKI) keyCert { return p.leafEKU }, nil, base),
			policy:     func(p *testPKI, pol *Policy) { pol.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} },
			wantCaseID: origCaseID, wantCPR: testCPR, wantChain: 2},

		// --------------------------------------------------- root and IDs
		{name: "fail/unknown-root-element", doc: signWith(func(p *testPKI) keyCert { return p.leafRSA }, nil, acceptance("a1")), code: CodePolicy},
		{name: "fail/root-in-other-namespace", doc: signWith(func(p *testPKI) keyCert { return p.leafRSA }, nil,
			bytes.Replace(base, []byte(manifestNS), []byte("urn:rehabgw:manifest:v2"), 1)), code: CodePolicy},
		{name: "fail/root-without-id", doc: build(rsaSpec, bytes.Replace(base, []byte(` ID="m1"`), nil, 1)), code: CodePolicy},
		{name: "fail/root-id-bad-form", doc: build(rsaSpec, bytes.Replace(base, []byte(` ID="m1"`), []byte(` ID="1 m"`), 1)), code: CodePolicy},

		// ------------------------------------------------ content tampering
		{name: "fail/caseid-changed-after-signing", doc: onSigned(func(r *etree.Element) *etree.Element {
			setText(r, "./CaseID", evilCaseID)
			return r
		}), code: CodeInvalid, naive: "./CaseID"},
		{name: "fail/cpr-changed-after-signing", doc: onSigned(func(r *etree.Element) *etree.Element {
			setText(r, "./Citizen/CPR", evilCPR)
			return r
		}), code: CodeInvalid, naive: "./Citizen/CPR"},
		{name: "fail/signature-value-changed", doc: onSigned(func(r *etree.Element) *etree.Element {
			e := r.FindElement("./Signature/SignatureValue")
			t := []byte(e.Text())
			t[10] ^= 1
			e.SetText(string(t))
			return r
		}), code: CodeInvalid},
		{name: "fail/digest-value-changed", doc: onSigned(func(r *etree.Element) *etree.Element {
			e := r.FindElement("./Signature/SignedInfo/Reference/DigestValue")
			t := []byte(e.Text())
			t[3] ^= 1
			e.SetText(string(t))
			return r
		}), code: CodeInvalid},
		{name: "fail/digest-value-wrong-length", doc: onSigned(func(r *etree.Element) *etree.Element {
			r.FindElement("./Signature/SignedInfo/Reference/DigestValue").SetText("AAAA")
			return r
		}), code: CodeInvalid},
		{name: "fail/comment-injected-in-signed-value", doc: func(t testing.TB, p *testPKI) []byte {
			return bytes.Replace(signedManifest(t), []byte(origCaseID), []byte("KK<!---->-2026-0001"), 1)
		}, code: "xml.comment"},
		{name: "fail/attribute-added-on-signature", doc: onSigned(func(r *etree.Element) *etree.Element {
			sigOf(r).CreateAttr("Id", "sig1")
			return r
		}), code: CodePolicy},
		{name: "fail/prefixed-algorithm-attribute-shadow", doc: onSigned(func(r *etree.Element) *etree.Element {
			sm := r.FindElement("./Signature/SignedInfo/SignatureMethod")
			sm.CreateAttr("ds:Algorithm", algRSASHA1)
			return r
		}), code: CodePolicy},
		{name: "fail/undeclared-prefix", doc: onSigned(func(r *etree.Element) *etree.Element {
			x := r.FindElement("./Citizen").CreateElement("Nick")
			x.Space = "undeclared"
			return r
		}), code: CodePolicy},

		// ------------------------------------------------- pre-parse guard
		{name: "fail/doctype-xxe", doc: raw(`<?xml version="1.0"?><!DOCTYPE Manifest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Manifest xmlns="` + manifestNS + `" ID="m1"><CaseID>&xxe;</CaseID></Manifest>`), code: "xml.doctype"},
		{name: "fail/entity-expansion", doc: raw(`<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><Manifest xmlns="` + manifestNS + `" ID="m1">&lol3;</Manifest>`), code: "xml.doctype"},
		{name: "fail/undefined-entity", doc: raw(`<Manifest xmlns="` + manifestNS + `" ID="m1">&lol;</Manifest>`), code: "xml.malformed"},
		{name: "fail/deep-nesting-100", doc: raw(`<Manifest xmlns="` + manifestNS + `" ID="m1">` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</Manifest>`), code: "xml.depth"},
		{name: "fail/attribute-flood", doc: func(testing.TB, *testPKI) []byte {
			var b strings.Builder
			b.WriteString(`<Manifest xmlns="` + manifestNS + `" ID="m1"><CaseID`)
			for i := range 1000 {
				fmt.Fprintf(&b, ` a%d="x"`, i)
			}
			b.WriteString(`/></Manifest>`)
			return []byte(b.String())
		}, code: "xml.attributes"},
		{name: "fail/element-flood", doc: raw(`<Manifest xmlns="` + manifestNS + `" ID="m1">` + strings.Repeat("<a/>", 1000) + `</Manifest>`), code: "xml.elements"},
		{name: "fail/too-large", doc: raw(`<Manifest xmlns="` + manifestNS + `" ID="m1">` + strings.Repeat("x", 300<<10) + `</Manifest>`), code: "xml.too_large"},
		{name: "fail/processing-instruction", doc: func(t testing.TB, p *testPKI) []byte {
			return bytes.Replace(signedManifest(t), []byte("<CaseID>"), []byte("<?evil x?><CaseID>"), 1)
		}, code: "xml.pi"},
		{name: "fail/not-xml", doc: raw("not xml at all " + testCPR), code: "xml.malformed"},
		{name: "fail/empty", doc: raw(""), code: "xml.malformed"},
		{name: "fail/latin1-declared", doc: raw(`<?xml version="1.0" encoding="ISO-8859-1"?><Manifest xmlns="` + manifestNS + `" ID="m1"/>`), code: "xml.encoding"},
	}
}

func TestVerify(t *testing.T) {
	p := getPKI(t)
	for _, tc := range verifyCases() {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc(t, p)
			pol := p.policy()
			if tc.policy != nil {
				tc.policy(p, &pol)
			}
			if tc.naive != "" {
				d := parseDoc(t, doc)
				el := d.Root().FindElement(tc.naive)
				if el == nil {
					t.Fatalf("naive path %s not found: the mutation is not what the test claims", tc.naive)
				}
				if got := el.Text(); got != evilCaseID && got != evilCPR {
					t.Fatalf("naive reader sees %q, not the attacker's value: the mutation is not an attack", got)
				}
			}
			if tc.lax != nil {
				if err := goxmldsigAlone(t, doc, tc.lax(p)); err != nil {
					t.Fatalf("goxmldsig alone rejects (%v); the case claims it accepts", err)
				}
			}
			v, err := Verify(doc, pol)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				if v != nil {
					t.Fatalf("Verified returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v (code %s)", err, errs.CodeOf(err))
			}
			checkVerified(t, p, v)
			if got := childText(v.Element, "./CaseID"); got != tc.wantCaseID {
				t.Errorf("verified CaseID = %q, want %q", got, tc.wantCaseID)
			}
			if tc.wantCPR != "" {
				if got := childText(v.Element, "./Citizen/CPR"); got != tc.wantCPR {
					t.Errorf("verified CPR = %q, want %q", got, tc.wantCPR)
				}
			}
			if len(v.Chain) != tc.wantChain {
				t.Errorf("chain length = %d, want %d", len(v.Chain), tc.wantChain)
			}
		})
	}
}

// checkVerified asserts what every accepted document must satisfy.
func checkVerified(t testing.TB, p *testPKI, v *Verified) {
	t.Helper()
	if v == nil || v.Element == nil || v.Certificate == nil || len(v.Chain) < 2 {
		t.Fatalf("incomplete Verified: %+v", v)
	}
	if !v.Chain[0].Equal(v.Certificate) || !v.Chain[len(v.Chain)-1].Equal(p.root.cert) {
		t.Errorf("chain does not run from the leaf to the root")
	}
	for _, el := range v.Element.FindElements(".//*") {
		if el.Tag == "Signature" {
			t.Errorf("verified element still holds a Signature")
		}
	}
}

func TestVerifyPolicyConfig(t *testing.T) {
	p := getPKI(t)
	doc := signedManifest(t)
	for _, tc := range []struct {
		name string
		pol  Policy
	}{
		{"fail/no-roots", Policy{Root: manifestRoot}},
		{"fail/no-root-name", Policy{Roots: p.rootPool}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(doc, tc.pol)
			if errs.CodeOf(err) != CodeConfig {
				t.Fatalf("err = %v, want %s", err, CodeConfig)
			}
		})
	}
	t.Run("ok/nil-now-uses-real-clock", func(t *testing.T) {
		pol := p.policy()
		pol.Now = nil
		if _, err := Verify(doc, pol); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ok/partial-limits-filled-from-manifest", func(t *testing.T) {
		pol := p.policy()
		pol.Limits.MaxBytes = 1 << 20
		if _, err := Verify(doc, pol); err != nil {
			t.Fatal(err)
		}
		big := signWith(func(p *testPKI) keyCert { return p.leafRSA }, nil, manifest(defaultRootID, 293))(t, p)
		pol.Limits.MaxElements = 100
		_, err := Verify(big, pol)
		wantCode(t, err, "xml.elements")
	})
}

// TestVerifyReturnsSignedBytesOnly: the element handed to callers is a
// fresh tree, not the caller's input, so mutating the input afterwards or
// reading the input instead is visibly wrong.
func TestVerifyReturnsSignedBytesOnly(t *testing.T) {
	p := getPKI(t)
	doc := signedManifest(t)
	v, err := Verify(doc, p.policy())
	if err != nil {
		t.Fatal(err)
	}
	if v.Element.Parent() != nil && v.Element.Parent().Parent() != nil {
		t.Fatalf("verified element is attached to a larger tree")
	}
	if sigOf(v.Element) != nil {
		t.Fatal("verified element contains the Signature")
	}
	if got := v.Element.SelectAttrValue("ID", ""); got != defaultRootID {
		t.Fatalf("ID = %q", got)
	}
}

// TestNoCPRInErrors runs every failing case and also probes places where a
// careless implementation would echo input: a CPR as an algorithm URI, as
// the Reference URI, as an element name in the Signature, and as the
// attacker certificate's subject.
func TestNoCPRInErrors(t *testing.T) {
	p := getPKI(t)
	probes := map[string][]byte{
		"fail/cpr-as-signature-method": build(specWith(func(s *sigSpec) { s.method = "urn:cpr:" + testCPRDash }), manifest(defaultRootID, 1))(t, p),
		"fail/cpr-as-reference-uri": build(specWith(func(s *sigSpec) {
			s.refs = []refSpec{{uri: "#_" + testCPR}}
		}), manifest(defaultRootID, 1))(t, p),
		"fail/cpr-as-element-in-signature": onSigned(func(r *etree.Element) *etree.Element {
			dsChild(sigOf(r), "CPR"+testCPR)
			return r
		})(t, p),
		"fail/cpr-as-root-id": build(rsaSpec, bytes.Replace(manifest(defaultRootID, 1), []byte(`ID="m1"`), []byte(`ID="`+testCPRDash+`"`), 1))(t, p),
		"fail/cpr-in-attacker-subject": build(func(p *testPKI) sigSpec {
			return sigSpec{key: p.attacker.key, certs: []*x509.Certificate{p.attacker.cert, p.leafOtherCA.cert}}
		}, manifest(defaultRootID, 1))(t, p),
	}
	for name, doc := range probes {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(doc, p.policy())
			if err == nil {
				t.Fatal("accepted")
			}
			assertNoLeak(t, err)
		})
	}
}
