package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/ident"
	"github.com/rehabgw/rehabgw/gateway/server"
	"github.com/rehabgw/rehabgw/gateway/store"
)

// conn holds the common connection flags.
type conn struct {
	gateway, cert, key, ca, transport string
	timeout                           time.Duration
}

func (c *conn) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.gateway, "gateway", envOr("GWCTL_GATEWAY", "https://127.0.0.1:8443"), "gateway base URL (env GWCTL_GATEWAY)")
	f.StringVar(&c.cert, "cert", os.Getenv("GWCTL_CERT"), "client certificate, PEM (env GWCTL_CERT)")
	f.StringVar(&c.key, "key", os.Getenv("GWCTL_KEY"), "client private key, PEM (env GWCTL_KEY)")
	f.StringVar(&c.ca, "ca", os.Getenv("GWCTL_CA"), "CA certificate that the gateway's certificate chains to (env GWCTL_CA)")
	f.StringVar(&c.transport, "transport", envOr("GWCTL_TRANSPORT", "tcp"), "h3 (HTTP/3 over UDP) or tcp (HTTPS)")
	f.DurationVar(&c.timeout, "timeout", 0, "give up after this long (0: no limit for transfers)")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *conn) client() (*client.Client, error) {
	if c.cert == "" || c.key == "" || c.ca == "" {
		return nil, usageErr("--cert, --key and --ca are required (or GWCTL_CERT, GWCTL_KEY, GWCTL_CA)")
	}
	if c.transport != "h3" && c.transport != "tcp" {
		return nil, usageErr("--transport is h3 or tcp")
	}
	cl, err := client.New(client.Config{Gateway: strings.TrimRight(c.gateway, "/"), CertFile: c.cert, KeyFile: c.key, CAFile: c.ca, Transport: c.transport, Timeout: c.timeout})
	if err != nil {
		return nil, ioErr(err)
	}
	return cl, nil
}

// remoteErr maps a request failure to the exit-code contract: 3 when the
// gateway was unreachable or answered 5xx (retry later), 1 for a refusal.
func remoteErr(err error) error {
	if client.IsUnavailable(err) {
		return &exitError{code: exitUnavailable, err: err}
	}
	var p *client.Problem
	if errors.As(err, &p) {
		return &exitError{code: exitRefused, err: problemError(p)}
	}
	return &exitError{code: exitUnavailable, err: err}
}

// problemError renders a problem as the reasons gwctl prints.
func problemError(p *client.Problem) error {
	var l errs.List
	for _, it := range p.Errors {
		l = append(l, &errs.Error{Code: it.Code, Part: it.Part, Line: it.Line, Path: it.Path, Msg: it.Message})
	}
	if len(l) == 0 {
		l = append(l, &errs.Error{Code: p.Code, Msg: fmt.Sprintf("%s (HTTP %d, request %s)", p.Detail, p.Status, p.RequestID)})
	}
	return l
}

func (a *app) pushCmd() *cobra.Command {
	var c conn
	var receipt string
	cmd := &cobra.Command{
		Use:   "push DIR",
		Short: "Push a signed bundle directory to the gateway",
		Long: `Push a signed bundle directory (manifest.xml and its parts) to the gateway
as multipart/related, streaming every part. The receipt (the gateway's signed
Acceptance) goes to stdout, or to --receipt FILE.

Exit 0 accepted (new, or an identical resend); 1 refused (4xx: the problem's
code and detail on stderr); 2 usage or I/O error; 3 the gateway was
unreachable or unavailable (5xx): retry later, a retry is always safe.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := existingDir(dir); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			d, manifest, err := readBundle(dir)
			if err != nil {
				return ioErr(err)
			}
			defer d.Close()
			v, err := newValidator()
			if err != nil {
				return ioErr(err)
			}
			m, err := v.Manifest(manifest)
			if m == nil {
				return refused(err)
			}
			var bar *progressbar.ProgressBar
			if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && m.TotalSize() > 4<<20 {
				bar = progressbar.DefaultBytes(m.TotalSize(), "pushing "+m.BundleID[:8])
			}
			var progress io.Writer
			if bar != nil {
				progress = bar
				defer func() { _ = bar.Finish() }()
			}
			body, contentType := client.BundleBody(manifest, bodyParts(m, d), progress)
			ctx := cmd.Context()
			resp, err := cl.Post(ctx, "/v1/bundles", contentType, body)
			if err != nil {
				return remoteErr(err)
			}
			defer resp.Body.Close()
			if err := client.CheckResponse(resp); err != nil {
				return remoteErr(err)
			}
			rec, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return remoteErr(err)
			}
			if receipt != "" {
				if err := bundle.WriteFileAtomic(receipt, rec); err != nil {
					return ioErr(err)
				}
				state := "accepted"
				if resp.StatusCode == http.StatusOK {
					state = "already accepted (identical resend)"
				}
				fmt.Fprintf(a.stdout, "%s: bundle %s, receipt in %s\n", state, m.BundleID, receipt)
				return nil
			}
			_, err = a.stdout.Write(rec)
			return err
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&receipt, "receipt", "", "write the receipt to FILE instead of stdout")
	return cmd
}

// bodyParts lists a bundle directory's parts for client.BundleBody.
func bodyParts(m *bundle.Manifest, d *bundle.Dir) []client.BodyPart {
	out := make([]client.BodyPart, len(m.Parts))
	for i, p := range m.Parts {
		out[i] = client.BodyPart{ID: p.ID, MediaType: p.MediaType, Open: func() (io.ReadCloser, error) { return d.Open(p.ID) }}
	}
	return out
}

type inboxEntry struct {
	Seq      int64      `json:"seq"`
	BundleID string     `json:"bundle_id"`
	CaseID   string     `json:"case_id"`
	Purpose  string     `json:"purpose"`
	From     string     `json:"from"`
	Function string     `json:"function,omitempty"`
	Received time.Time  `json:"received"`
	AckedAt  *time.Time `json:"acked_at,omitempty"`
}

func (a *app) inboxCmd() *cobra.Command {
	var c conn
	var after int64
	var wait, limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "List the deliveries addressed to your organisation, oldest first",
		Long: `List the deliveries addressed to your organisation, oldest first. --after
takes the cursor (the seq of the last delivery you processed); --wait long-polls
up to that many seconds for something new. --json prints an array of objects
with bundle_id, case_id, purpose, from, received (and seq, function, acked_at).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {strconv.Itoa(wait)}, "limit": {strconv.Itoa(limit)}}
			resp, err := cl.Get(cmd.Context(), "/v1/inbox?"+q.Encode())
			if err != nil {
				return remoteErr(err)
			}
			defer resp.Body.Close()
			if err := client.CheckResponse(resp); err != nil {
				return remoteErr(err)
			}
			var out struct {
				Deliveries []inboxEntry `json:"deliveries"`
				Cursor     int64        `json:"cursor"`
			}
			if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&out); err != nil {
				return remoteErr(err)
			}
			if asJSON {
				if out.Deliveries == nil {
					out.Deliveries = []inboxEntry{}
				}
				return a.printJSON(out.Deliveries)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tBUNDLE\tCASE\tPURPOSE\tFROM\tRECEIVED\tACKED")
			for _, d := range out.Deliveries {
				acked := "-"
				if d.AckedAt != nil {
					acked = d.AckedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Seq, d.BundleID, d.CaseID, d.Purpose, d.From, d.Received.Local().Format(time.DateTime), acked)
			}
			tw.Flush()
			fmt.Fprintf(a.stderr, "cursor: %d\n", out.Cursor)
			return nil
		},
	}
	c.flags(cmd)
	cmd.Flags().Int64Var(&after, "after", 0, "cursor: list deliveries after this seq")
	cmd.Flags().IntVar(&wait, "wait", 0, "long-poll up to this many seconds (at most 60)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many deliveries")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func (a *app) fetchCmd() *cobra.Command {
	var c conn
	var out string
	var trust, gatewayTrust []string
	cmd := &cobra.Command{
		Use:   "fetch ID --out DIR",
		Short: "Fetch a bundle into DIR, verifying both signatures and every digest",
		Long: `Fetch a bundle into DIR in the on-disk form (manifest.xml, acceptance.xml and
the parts). The gateway's countersignature and the sender's signature are
verified (against --gateway-trust and --trust, both defaulting to --ca), and
every part's size and SHA-256 as it arrives. DIR must not exist; on any
failure nothing is left behind. Exit 0 fetched and verified; 1 refused or
verification failed; 2 usage or I/O error; 3 unavailable.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if out == "" {
				return usageErr("--out is required")
			}
			if _, err := os.Stat(out); err == nil {
				return usageErr("%s exists; fetch writes a new directory", out)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			if len(trust) == 0 {
				trust = []string{c.ca}
			}
			if len(gatewayTrust) == 0 {
				gatewayTrust = []string{c.ca}
			}
			senders, err := loadAnchors(trust)
			if err != nil {
				return err
			}
			gw, err := loadAnchors(gatewayTrust)
			if err != nil {
				return err
			}
			v, err := newValidator()
			if err != nil {
				return ioErr(err)
			}
			tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), ".fetch-*")
			if err != nil {
				return ioErr(err)
			}
			defer os.RemoveAll(tmp)
			m, err := a.fetchInto(cmd.Context(), cl, v, id, tmp, bundle.Trust{Roots: gw}, bundle.Trust{Roots: senders})
			if err != nil {
				return err
			}
			if err := os.Rename(tmp, out); err != nil {
				return ioErr(err)
			}
			fmt.Fprintf(a.stdout, "fetched and verified: %s bundle %s from %s, %d parts, in %s\n", m.Purpose, m.BundleID, m.Sender.Organisation, len(m.Parts), out)
			return nil
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&out, "out", "", "directory to create (required)")
	cmd.Flags().StringSliceVar(&trust, "trust", nil, "CA certificates for senders' signatures (default: --ca)")
	cmd.Flags().StringSliceVar(&gatewayTrust, "gateway-trust", nil, "CA certificates for the gateway's countersignature (default: --ca)")
	return cmd
}

func (a *app) fetchInto(ctx context.Context, cl *client.Client, v *bundle.Validator, id, dir string, gw, senders bundle.Trust) (*bundle.Manifest, error) {
	resp, err := cl.Get(ctx, "/v1/bundles/"+url.PathEscape(id))
	if err != nil {
		return nil, remoteErr(err)
	}
	acc, err := func() ([]byte, error) {
		defer resp.Body.Close()
		if err := client.CheckResponse(resp); err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(resp.Body, bundle.AcceptanceLimits.MaxBytes+1))
	}()
	if err != nil {
		return nil, remoteErr(err)
	}
	accepted, m, err := v.VerifyAcceptance(acc, gw, senders)
	if err != nil {
		return nil, refused(err)
	}
	if m.BundleID != id {
		return nil, refused(errs.E(errs.BadSignature, "acceptance.mismatch", "the gateway answered with another bundle"))
	}
	if err := bundle.WriteFileAtomic(filepath.Join(dir, bundle.AcceptanceFile), acc); err != nil {
		return nil, ioErr(err)
	}
	if err := bundle.WriteFileAtomic(filepath.Join(dir, bundle.ManifestFile), accepted.SignedManifest); err != nil {
		return nil, ioErr(err)
	}
	for _, p := range m.Parts {
		if err := fetchPart(ctx, cl, v, m, p, dir); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// fetchPart streams one part to its file through the validator's part check
// (size, SHA-256, and for documents schema and rules).
func fetchPart(ctx context.Context, cl *client.Client, v *bundle.Validator, m *bundle.Manifest, p bundle.Part, dir string) error {
	resp, err := cl.Get(ctx, "/v1/bundles/"+url.PathEscape(m.BundleID)+"/parts/"+url.PathEscape(p.ID))
	if err != nil {
		return remoteErr(err)
	}
	defer resp.Body.Close()
	if err := client.CheckResponse(resp); err != nil {
		return remoteErr(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, p.ID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return ioErr(err)
	}
	pc := v.BeginPart(m, p)
	_, cerr := io.Copy(io.MultiWriter(f, pc), io.LimitReader(resp.Body, p.Size+1))
	if err := f.Close(); err != nil && cerr == nil {
		cerr = err
	}
	if cerr != nil {
		if errs.KindOf(cerr) != errs.Other {
			return refused(cerr)
		}
		return &exitError{code: exitUnavailable, err: fmt.Errorf("part %s: transfer broke off: %w", p.ID, cerr)}
	}
	if err := pc.Finish(); err != nil {
		return refused(err)
	}
	return nil
}

func (a *app) ackCmd() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "ack ID",
		Short: "Record that your organisation has the bundle",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			resp, err := cl.Post(cmd.Context(), "/v1/bundles/"+url.PathEscape(args[0])+"/ack", "application/json", bytes.NewReader(nil))
			if err != nil {
				return remoteErr(err)
			}
			defer resp.Body.Close()
			if err := client.CheckResponse(resp); err != nil {
				return remoteErr(err)
			}
			var out struct {
				AckedAt time.Time `json:"acked_at"`
			}
			_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&out)
			fmt.Fprintf(a.stdout, "acknowledged %s at %s\n", args[0], out.AckedAt.Local().Format(time.RFC3339))
			return nil
		},
	}
	c.flags(cmd)
	return cmd
}

func (a *app) auditCmd() *cobra.Command {
	var c conn
	var cpr string
	cmd := &cobra.Command{
		Use:   "audit --cpr CPR | audit verify",
		Short: "Operators: export one citizen's audit entries, or verify the chain",
		Long: `With --cpr, print every audit entry concerning one citizen as JSON (an
access request under GDPR art. 15): who read or sent what, and when. The CPR
number travels in the request body, never in a URL.
'gwctl audit verify' downloads the whole chain and recomputes every hash;
exit 0 when it holds, 1 at the first broken entry.
Both need an operator certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cpr == "" {
				return usageErr("--cpr is required (or use 'gwctl audit verify')")
			}
			if !ident.ValidCPRFormat(cpr) {
				return usageErr("--cpr is not ten digits starting with a valid date")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"cpr": cpr})
			resp, err := cl.Post(cmd.Context(), "/v1/audit/search", "application/json", bytes.NewReader(body))
			if err != nil {
				return remoteErr(err)
			}
			defer resp.Body.Close()
			if err := client.CheckResponse(resp); err != nil {
				return remoteErr(err)
			}
			var out struct {
				Entries []server.AuditEntryJSON `json:"entries"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				return remoteErr(err)
			}
			if out.Entries == nil {
				out.Entries = []server.AuditEntryJSON{}
			}
			return a.printJSON(out.Entries)
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&cpr, "cpr", "", "the citizen's CPR number")

	var vc conn
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Download the audit chain and check every hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := vc.client()
			if err != nil {
				return err
			}
			var after int64
			prev := ""
			total := 0
			for {
				resp, err := cl.Get(cmd.Context(), "/v1/audit?limit=5000&after="+strconv.FormatInt(after, 10))
				if err != nil {
					return remoteErr(err)
				}
				var page struct {
					Entries []server.AuditEntryJSON `json:"entries"`
				}
				err = client.CheckResponse(resp)
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&page)
				}
				resp.Body.Close()
				if err != nil {
					return remoteErr(err)
				}
				if len(page.Entries) == 0 {
					break
				}
				es := server.FromJSON(page.Entries)
				if es[0].Seq != after+1 {
					return refused(errs.E(errs.Invalid, "audit.gap", "entry %d is missing from the chain", after+1))
				}
				if bad := store.VerifyChain(prev, es); bad != 0 {
					return refused(errs.E(errs.Invalid, "audit.broken", "the audit chain is broken at entry %d", bad))
				}
				for i := 1; i < len(es); i++ {
					if es[i].Seq != es[i-1].Seq+1 {
						return refused(errs.E(errs.Invalid, "audit.gap", "entry %d is missing from the chain", es[i-1].Seq+1))
					}
				}
				prev = es[len(es)-1].Hash
				after = es[len(es)-1].Seq
				total += len(es)
			}
			fmt.Fprintf(a.stdout, "audit chain verified: %d entries, head %s\n", total, shortHash(prev))
			return nil
		},
	}
	vc.flags(verify)
	cmd.AddCommand(verify)
	return cmd
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	if h == "" {
		return "(empty log)"
	}
	return h
}
