package main

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/bundle/example"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/ident"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

func newValidator() (*bundle.Validator, error) {
	v, err := bundle.NewValidator(bundle.Config{})
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	return v, nil
}

func (a *app) exampleCmd() *cobra.Command {
	var (
		purpose, out, meeting, cpr, gln, sender, certPath, keyPath, replyTo string
		large, fixed                                                        bool
	)
	cmd := &cobra.Command{
		Use:   "example --purpose P --out DIR",
		Short: "Write a complete sample bundle (the generator the tests use)",
		Long: `Write a complete sample bundle for a fictional citizen into DIR.

Purposes: forberedelse, indstilling, henvisning, sundhedskoordinator-udtalelse,
klinisk-funktion-attest. Without --fixed the bundle gets a fresh bundle ID and
the current time, and a meeting date that suits the purpose (two weeks ahead
for forberedelse, today for indstilling). With --cert and --key the manifest
is signed as well; otherwise sign it with 'gwctl sign'.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("--out is required")
			}
			p := bundle.Purpose(purpose)
			if _, ok := bundle.SpecOf(p); !ok {
				return usageErr("--purpose must be one of %v", bundle.Purposes())
			}
			o := example.Options{Purpose: p, Large: large, CPR: cpr, GPGLN: gln, Sender: sender, InReplyTo: replyTo}
			if replyTo != "" {
				if _, err := uuid.Parse(replyTo); err != nil {
					return usageErr("--in-reply-to must be a bundle ID (UUID)")
				}
			}
			if cpr != "" && !ident.ValidCPRFormat(cpr) {
				return usageErr("--cpr is not ten digits starting with a valid date")
			}
			if gln != "" && !ident.ValidGLN(gln) {
				return usageErr("--gp-gln is not a 13-digit GLN with a valid check digit")
			}
			if !fixed {
				now := time.Now().Truncate(time.Second)
				o.Created = now
				o.BundleID = uuid.NewString()
				switch p {
				case bundle.Forberedelse, bundle.Henvisning:
					o.Meeting = now.AddDate(0, 0, 14)
				case bundle.Indstilling:
					o.Meeting = now
				}
			}
			if meeting != "" {
				d, err := time.Parse(bundle.DateLayout, meeting)
				if err != nil {
					return usageErr("--meeting must be YYYY-MM-DD")
				}
				o.Meeting = d
			}
			var sign func([]byte) ([]byte, error)
			if certPath != "" || keyPath != "" {
				s, err := loadSigner(certPath, keyPath)
				if err != nil {
					return err
				}
				sign = s.Sign
			}
			m, err := example.Write(out, o, sign)
			if err != nil {
				return ioErr(err)
			}
			fmt.Fprintf(a.stdout, "wrote %s bundle %s (%d parts) to %s\n", m.Purpose, m.BundleID, len(m.Parts), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&purpose, "purpose", "", "bundle purpose (required)")
	f.StringVar(&out, "out", "", "directory to write (required)")
	f.BoolVar(&large, "large", false, "documents of 5,000+ elements and an attachment of 20 MiB or more")
	f.StringVar(&meeting, "meeting", "", "rehabilitation-team meeting date, YYYY-MM-DD")
	f.StringVar(&cpr, "cpr", "", "the citizen's CPR number (ten digits)")
	f.StringVar(&gln, "gp-gln", "", "the GP's GLN (13 digits)")
	f.StringVar(&sender, "sender", "", "sending organisation (registry ID, e.g. kommune-751)")
	f.StringVar(&certPath, "cert", "", "sign with this certificate (PEM)")
	f.StringVar(&keyPath, "key", "", "sign with this private key (PEM)")
	f.StringVar(&replyTo, "in-reply-to", "", "for replies: the bundle ID answered")
	f.BoolVar(&fixed, "fixed", false, "reproducible content: fixed dates and a bundle ID derived from the case (used for examples/)")
	return cmd
}

func loadSigner(certPath, keyPath string) (*xmlsig.Signer, error) {
	if certPath == "" || keyPath == "" {
		return nil, usageErr("--cert and --key go together")
	}
	key, chain, err := certs.LoadKeyPair(certPath, keyPath)
	if err != nil {
		return nil, ioErr(err)
	}
	s, err := xmlsig.NewSigner(key, chain)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return s, nil
}

// jsonError is the --json form of one reason.
type jsonError struct {
	Code string `json:"code"`
	Kind string `json:"kind"`
	Part string `json:"part,omitempty"`
	Line int    `json:"line,omitempty"`
	Path string `json:"path,omitempty"`
	Msg  string `json:"message"`
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) validateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate DIR",
		Short: "Validate a bundle directory offline: limits, schemas, business rules, digests",
		Long: `Validate a bundle directory: XML limits, the manifest and every document
against the schemas, the business rules and every part's size and SHA-256.
The signature is not checked (use 'gwctl verify').

Exit 0 valid; 1 invalid (every reason on stderr, or with --json a JSON report
on stdout); 2 usage or I/O error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := args[0]
			if err := existingDir(dir); err != nil {
				return err
			}
			v, err := newValidator()
			if err != nil {
				return ioErr(err)
			}
			d, data, err := readBundle(dir)
			if err != nil {
				if errs.KindOf(err) != errs.Other {
					return a.verdict(err, asJSON)
				}
				return ioErr(err)
			}
			defer d.Close()
			m, err := v.Manifest(data)
			var all errs.List
			all = append(all, errs.Flatten(err)...)
			if m != nil {
				all = append(all, errs.Flatten(v.ValidateParts(m, d.Open))...)
			}
			if len(all) > 0 {
				return a.verdict(all, asJSON)
			}
			if asJSON {
				return a.printJSON(map[string]any{"valid": true, "bundle_id": m.BundleID, "purpose": m.Purpose, "parts": len(m.Parts)})
			}
			fmt.Fprintf(a.stdout, "valid: %s bundle %s, %d parts\n", m.Purpose, m.BundleID, len(m.Parts))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdict as JSON on stdout")
	return cmd
}

// verdict turns a list of reasons into exit 1, printed as text or JSON.
func (a *app) verdict(err error, asJSON bool) error {
	if asJSON {
		var out []jsonError
		for _, e := range errs.Flatten(err) {
			out = append(out, jsonError{Code: e.Code, Kind: e.Kind.String(), Part: e.Part, Line: e.Line, Path: e.Path, Msg: e.Msg})
		}
		if perr := a.printJSON(map[string]any{"valid": false, "errors": out}); perr != nil {
			return ioErr(perr)
		}
		return &exitError{code: exitRefused, err: errs.List{}}
	}
	return refused(err)
}

func (a *app) signCmd() *cobra.Command {
	var certPath, keyPath string
	var resign bool
	cmd := &cobra.Command{
		Use:   "sign --cert C --key K DIR",
		Short: "Sign DIR/manifest.xml in place (enveloped XML-DSig, exc-c14n, SHA-256)",
		Long: `Sign DIR/manifest.xml in place with the organisation certificate and key.
The manifest must be schema-valid, and the certificate's organisation
(subject serialNumber CVR:...-UID:...) must be the manifest's sender.
Exit 0 signed; 1 the manifest or certificate is refused; 2 usage or I/O error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := args[0]
			if err := existingDir(dir); err != nil {
				return err
			}
			s, err := loadSigner(certPath, keyPath)
			if err != nil {
				return err
			}
			v, err := newValidator()
			if err != nil {
				return ioErr(err)
			}
			d, data, err := readBundle(dir)
			if err != nil {
				return ioErr(err)
			}
			d.Close()
			if resign {
				if data, err = stripSignature(data); err != nil {
					return refused(err)
				}
			}
			m, err := v.Manifest(data)
			if m == nil {
				return refused(err)
			}
			if err := v.CheckSigner(m, s.Certificate()); err != nil {
				return refused(err)
			}
			signed, err := s.Sign(data)
			if err != nil {
				return refused(err)
			}
			if err := bundle.WriteFileAtomic(dir+"/"+bundle.ManifestFile, signed); err != nil {
				return ioErr(err)
			}
			fmt.Fprintf(a.stdout, "signed %s/%s as %s\n", dir, bundle.ManifestFile, identityOf(s.Certificate()))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&certPath, "cert", "", "signing certificate, PEM, leaf first (required)")
	f.StringVar(&keyPath, "key", "", "private key, PEM (required)")
	f.BoolVar(&resign, "resign", false, "replace an existing signature")
	return cmd
}

func identityOf(c *x509.Certificate) string {
	id, err := certs.IdentityOf(c)
	if err != nil {
		return "(no organisation identity)"
	}
	return id.String()
}

// stripSignature removes a ds:Signature child of the root.
func stripSignature(data []byte) ([]byte, error) {
	if _, err := xmlsafe.Check(data, xmlsafe.Manifest); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, errs.E(errs.Invalid, "xml.malformed", "manifest is not well-formed")
	}
	for _, c := range doc.Root().ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == bundle.DSigNS {
			doc.Root().RemoveChild(c)
		}
	}
	return doc.WriteToBytes()
}

func (a *app) verifyCmd() *cobra.Command {
	var trust, gatewayTrust []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify --trust CA DIR",
		Short: "Verify the signature, the signer's identity and every part's digest",
		Long: `Verify a signed bundle directory: the manifest signature under the strict
policy against the trusted CA certificates, the signer's organisation against
the manifest's sender, the business rules, and every part (size, SHA-256,
schema). When DIR holds acceptance.xml (a bundle fetched from the gateway),
the gateway's countersignature is verified too, against --gateway-trust
(default: the same CAs as --trust).

Exit 0 everything holds; 1 something does not (reasons on stderr);
2 usage or I/O error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := args[0]
			if err := existingDir(dir); err != nil {
				return err
			}
			if len(trust) == 0 {
				return usageErr("--trust is required (PEM file of trusted CA certificates)")
			}
			roots, err := loadAnchors(trust)
			if err != nil {
				return err
			}
			gwRoots := roots
			if len(gatewayTrust) > 0 {
				if gwRoots, err = loadAnchors(gatewayTrust); err != nil {
					return err
				}
			}
			v, err := newValidator()
			if err != nil {
				return ioErr(err)
			}
			d, data, err := readBundle(dir)
			if err != nil {
				return ioErr(err)
			}
			defer d.Close()
			m, ver, err := v.VerifyManifest(data, bundle.Trust{Roots: roots})
			if err != nil {
				return a.verdict(err, asJSON)
			}
			if err := v.ValidateParts(m, d.Open); err != nil {
				return a.verdict(err, asJSON)
			}
			countersigned := false
			if acc, err := d.ReadAcceptance(bundle.AcceptanceLimits.MaxBytes); err == nil {
				a2, m2, err := v.VerifyAcceptance(acc, bundle.Trust{Roots: gwRoots}, bundle.Trust{Roots: roots})
				if err != nil {
					return a.verdict(err, asJSON)
				}
				if m2.BundleID != m.BundleID || string(a2.SignedManifest) != string(data) {
					return a.verdict(errs.E(errs.BadSignature, "acceptance.mismatch", "acceptance.xml countersigns another manifest").InPart(bundle.AcceptanceFile), asJSON)
				}
				countersigned = true
			} else if !bundle.IsNotExist(err) {
				return ioErr(err)
			}
			if asJSON {
				return a.printJSON(map[string]any{"valid": true, "bundle_id": m.BundleID, "signer": identityOf(ver.Certificate), "countersigned": countersigned})
			}
			fmt.Fprintf(a.stdout, "verified: %s bundle %s signed by %s (%s), %d parts", m.Purpose, m.BundleID, m.Sender.Organisation, identityOf(ver.Certificate), len(m.Parts))
			if countersigned {
				fmt.Fprint(a.stdout, ", countersigned by the gateway")
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&trust, "trust", nil, "trusted CA certificates for senders, PEM (repeatable)")
	f.StringSliceVar(&gatewayTrust, "gateway-trust", nil, "trusted CA certificates for the gateway's countersignature (default: --trust)")
	f.BoolVar(&asJSON, "json", false, "print the verdict as JSON on stdout")
	return cmd
}

// loadAnchors loads trust anchors and insists that they are CA
// certificates: trusting a leaf would accept anything that leaf signed
// without a chain, which is rarely what an operator means.
func loadAnchors(paths []string) (*x509.CertPool, error) {
	pool, list, err := certs.LoadPool(paths...)
	if err != nil {
		return nil, ioErr(err)
	}
	for _, c := range list {
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, usageErr("trust anchor %q is not a CA certificate", c.Subject.CommonName)
		}
	}
	return pool, nil
}

func (a *app) certsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Certificates: the development PKI"}
	var out string
	var force bool
	dev := &cobra.Command{
		Use:   "dev --out DIR",
		Short: "Create a development CA and certificates (never for production)",
		Long: `Create a development CA and certificates in DIR: ca.crt, gateway.crt/.key,
kommune-101.crt/.key (København), kommune-751.crt/.key (Aarhus),
region-1084.crt/.key (Hovedstaden), region-1082.crt/.key (Midtjylland),
operator.crt/.key. Keys are generated here and written 0600; never commit them.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("--out is required")
			}
			if err := certs.GenerateDev(out, certs.DevOptions{Now: time.Now(), Registry: registry.Default(), Force: force}); err != nil {
				return ioErr(err)
			}
			fmt.Fprintf(a.stdout, "development PKI written to %s (trust anchor: %s/ca.crt)\n", out, out)
			return nil
		},
	}
	dev.Flags().StringVar(&out, "out", "", "directory to write (required)")
	dev.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	cmd.AddCommand(dev)
	return cmd
}
