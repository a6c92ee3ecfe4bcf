package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/bundle/example"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

// Organisations of the development PKI the bundles of NewBundle travel
// between.
const (
	Sender    = "kommune-101" // København
	Recipient = "region-1084" // Hovedstaden, its region
	Operator  = "operator"
)

// AttachmentID is the part ID of the extra attachment of NewBundle.
const AttachmentID = "bilag-e2e.pdf"

// Bundle is a signed bundle directory.
type Bundle struct {
	Dir      string
	ID       string
	Manifest []byte        // the signed manifest.xml
	Parts    []bundle.Part // in manifest order
}

// Size is the total size of the bundle's parts.
func (b *Bundle) Size() int64 {
	var n int64
	for _, p := range b.Parts {
		n += p.Size
	}
	return n
}

// NewBundle writes a fresh signed forberedelse bundle from kommune-101 to
// region-1084 into a new temporary directory: a new bundle ID and the
// current time, the example's documents and LÆ 265, and, when attachment >
// 0, an extra bilag PDF of exactly attachment bytes of pseudo-random content
// drawn from seed.
func NewBundle(t testing.TB, pki *PKI, attachment int64, seed uint64) *Bundle {
	t.Helper()
	return NewBundleIn(t, filepath.Join(t.TempDir(), "bundle"), pki, attachment, seed)
}

// NewBundleIn is NewBundle writing into dir (which must not exist), for
// callers that remove bundles as they go.
func NewBundleIn(t testing.TB, dir string, pki *PKI, attachment int64, seed uint64) *Bundle {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	id := uuid.NewString()
	m, parts, err := example.Build(example.Options{Purpose: bundle.Forberedelse, BundleID: id, Created: now, Meeting: now.AddDate(0, 0, 14)})
	if err != nil {
		t.Fatalf("e2e: example bundle: %v", err)
	}
	if attachment > 0 {
		parts = append(parts, bundle.PartSource{ID: AttachmentID, Kind: bundle.KindBilag, MediaType: "application/pdf",
			Write: func(w io.Writer) error { return writeAttachment(w, attachment, seed) }})
	}
	key, chain, err := certs.LoadKeyPair(pki.Cert(Sender), pki.Key(Sender))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	signer, err := xmlsig.NewSigner(key, chain)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("e2e: %s exists", dir)
	}
	if err := bundle.WriteDir(dir, m, parts, signer.Sign); err != nil {
		t.Fatalf("e2e: writing the bundle: %v", err)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, bundle.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	return &Bundle{Dir: dir, ID: id, Manifest: manifest, Parts: append([]bundle.Part(nil), m.Parts...)}
}

// writeAttachment writes a PDF header and pseudo-random bytes, size in all.
func writeAttachment(w io.Writer, size int64, seed uint64) error {
	head := []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	if int64(len(head)) > size {
		head = head[:size]
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rng := rand.NewChaCha8(s)
	buf := make([]byte, 256<<10)
	for left := size - int64(len(head)); left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = rng.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// PushResult is the gateway's answer to a push.
type PushResult struct {
	Status     int
	Body       []byte // the receipt (2xx) or the problem details
	Code       string // the problem's code (non-2xx)
	RetryAfter string
}

// Push streams the bundle to the gateway as multipart/related (manifest
// first, then every part, as gwctl push does) and returns the answer. An
// error means no answer arrived (the connection failed).
func Push(ctx context.Context, c *client.Client, b *Bundle) (*PushResult, error) {
	parts := make([]client.BodyPart, len(b.Parts))
	for i, p := range b.Parts {
		parts[i] = client.BodyPart{ID: p.ID, MediaType: p.MediaType, Open: func() (io.ReadCloser, error) { return os.Open(filepath.Join(b.Dir, p.ID)) }}
	}
	req, ct := client.BundleBody(b.Manifest, parts, nil)
	resp, err := c.Post(ctx, "/v1/bundles", ct, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	res := &PushResult{Status: resp.StatusCode, Body: body, RetryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode >= 300 {
		var p client.Problem
		_ = json.Unmarshal(body, &p)
		res.Code = p.Code
	}
	return res, nil
}

// Delivery is one inbox entry.
type Delivery struct {
	Seq      int64      `json:"seq"`
	BundleID string     `json:"bundle_id"`
	CaseID   string     `json:"case_id"`
	Purpose  string     `json:"purpose"`
	From     string     `json:"from"`
	Function string     `json:"function"`
	Received time.Time  `json:"received"`
	AckedAt  *time.Time `json:"acked_at"`
}

// Inbox reads GET /v1/inbox?after=&wait=&limit=. A non-2xx answer is a
// *client.Problem.
func Inbox(ctx context.Context, c *client.Client, after int64, wait, limit int) ([]Delivery, int64, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {strconv.Itoa(wait)}, "limit": {strconv.Itoa(limit)}}
	resp, err := c.Get(ctx, "/v1/inbox?"+q.Encode())
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if err := client.CheckResponse(resp); err != nil {
		return nil, 0, err
	}
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
		Cursor     int64      `json:"cursor"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, 0, err
	}
	return out.Deliveries, out.Cursor, nil
}

// AllInbox reads the whole inbox of the client's organisation, page by
// page, oldest first; any failure fails the test.
func AllInbox(t testing.TB, c *client.Client) []Delivery {
	t.Helper()
	var all []Delivery
	var after int64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		page, cursor, err := Inbox(ctx, c, after, 0, 1000)
		cancel()
		if err != nil {
			t.Fatalf("e2e: inbox after %d: %v", after, err)
		}
		all = append(all, page...)
		if len(page) == 0 {
			return all
		}
		after = cursor
	}
}

// CountBundle counts the deliveries of one bundle.
func CountBundle(ds []Delivery, id string) int {
	n := 0
	for _, d := range ds {
		if d.BundleID == id {
			n++
		}
	}
	return n
}

// GetBundle reads GET /v1/bundles/{id}: the status and the body (the
// acceptance on 200).
func GetBundle(ctx context.Context, c *client.Client, id string) (int, []byte, error) {
	resp, err := c.Get(ctx, "/v1/bundles/"+url.PathEscape(id))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, body, err
}

// Ack acknowledges a bundle and returns the recorded time.
func Ack(ctx context.Context, c *client.Client, id string) (time.Time, error) {
	resp, err := c.Post(ctx, "/v1/bundles/"+url.PathEscape(id)+"/ack", "application/json", nil)
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	if err := client.CheckResponse(resp); err != nil {
		return time.Time{}, err
	}
	var out struct {
		AckedAt *time.Time `json:"acked_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return time.Time{}, err
	}
	if out.AckedAt == nil {
		return time.Time{}, errors.New("e2e: ack answered without acked_at")
	}
	return *out.AckedAt, nil
}

// Ready reads /readyz and returns its status (0 when no answer came).
func Ready(ctx context.Context, c *client.Client) int {
	resp, err := c.Get(ctx, "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// FetchVerify fetches a bundle through the gateway with gwctl fetch as who
// (which verifies the gateway's countersignature, the sender's signature
// and every part's digest) and fails the test unless that succeeds. It
// returns the directory written.
func (p *Proc) FetchVerify(t testing.TB, who, id string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fetched-"+id)
	r := Gwctl(t, append([]string{"fetch", id, "--out", out}, p.Flags(who)...)...)
	if r.Code != 0 {
		t.Fatalf("gwctl fetch %s as %s from %s: exit %d\nstdout: %s\nstderr: %s", id, who, p.Addr, r.Code, r.Stdout, r.Stderr)
	}
	return out
}

// AuditVerify runs gwctl audit verify as the operator and fails the test
// unless the chain holds.
func (p *Proc) AuditVerify(t testing.TB) string {
	t.Helper()
	return MustGwctl(t, 0, append([]string{"audit", "verify"}, p.Flags(Operator)...)...)
}

// Must fails the test on err, naming what was being done.
func Must(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
