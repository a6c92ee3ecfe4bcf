package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/ident"
	"github.com/rehabgw/rehabgw/gateway/intake"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/store"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
)

// API serves the /v1 endpoints (see docs/api.md and docs/openapi.yaml).
type API struct {
	Pipeline *intake.Pipeline
	Store    store.Store
	Blobs    blob.Store
	Limits   bundle.Limits
	Log      *zap.Logger
	Now      func() time.Time
	// PollInterval bounds how late a long-polling reader sees a delivery
	// committed by another gatewayd process (default 200 ms; see
	// WatchCommits); deliveries committed by this process wake readers at
	// once.
	PollInterval time.Duration

	once sync.Once
	wake *notifier
}

func (a *API) init() {
	a.once.Do(func() {
		a.wake = newNotifier()
		if a.Log == nil {
			a.Log = zap.NewNop()
		}
		if a.Now == nil {
			a.Now = time.Now
		}
		if a.PollInterval <= 0 {
			a.PollInterval = 200 * time.Millisecond
		}
	})
}

// Notify wakes every long-polling inbox reader; the intake pipeline calls it
// after each commit (wire Pipeline.Committed to it).
func (a *API) Notify() { a.init(); a.wake.notify() }

// WatchCommits wakes long-polling readers when another gatewayd process
// commits: one cheap LastSeq query per PollInterval for the whole process,
// however many readers wait. Run it for the gateway's lifetime.
func (a *API) WatchCommits(ctx context.Context) {
	a.init()
	last, _ := a.Store.LastSeq(ctx)
	t := time.NewTicker(a.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if seq, err := a.Store.LastSeq(ctx); err == nil && seq != last {
			last = seq
			a.wake.notify()
		}
	}
}

// Register adds the /v1 routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	a.init()
	mux.HandleFunc("POST /v1/bundles", a.push)
	mux.HandleFunc("GET /v1/inbox", a.inbox)
	mux.HandleFunc("GET /v1/bundles/{id}", a.getBundle)
	mux.HandleFunc("GET /v1/bundles/{id}/parts/{part}", a.getPart)
	mux.HandleFunc("POST /v1/bundles/{id}/ack", a.ack)
	mux.HandleFunc("GET /v1/audit", a.auditList)
	mux.HandleFunc("POST /v1/audit/search", a.auditSearch)
}

func (a *API) caller(w http.ResponseWriter, r *http.Request) (*Caller, bool) {
	c, ok := CallerFrom(r.Context())
	if !ok || c.Org == nil {
		WriteProblem(w, r, errs.E(errs.Forbidden, "auth.unknown_organisation", "the client certificate names no organisation of the registry"))
		return nil, false
	}
	return c, true
}

// audit appends an entry. A read is served only after its entry is
// written: the log must be complete (GDPR art. 15), so a failed append
// makes the read fail as unavailable.
func (a *API) audit(ctx context.Context, c *Caller, action, bundleID, cpr, outcome, detail string) error {
	e := store.AuditEntry{At: a.Now(), Actor: c.Identity.String(), ActorOrg: c.Org.ID, Action: action,
		BundleID: bundleID, CPR: cpr, Outcome: outcome, Detail: detail}
	if err := a.Store.Audit(context.WithoutCancel(ctx), e); err != nil {
		a.Log.Error("audit append failed", zap.String("action", action), zap.String("bundle_id", bundleID), zap.Error(err))
		return errs.Wrap(errs.Unavailable, "audit.unavailable", err, "the access could not be recorded; nothing was served, retry later")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// push handles POST /v1/bundles: multipart/related, manifest first, then
// each part with its part ID as Content-ID.
func (a *API) push(w http.ResponseWriter, r *http.Request) {
	c, ok := a.caller(w, r)
	if !ok {
		return
	}
	lim := a.Limits
	if lim.MaxBundleBytes <= 0 {
		lim = bundle.DefaultLimits
	}
	// The whole request: every part, the manifest and multipart framing.
	r.Body = http.MaxBytesReader(w, r.Body, lim.MaxBundleBytes+xmlsafe.Manifest.MaxBytes+1<<20)
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" || params["boundary"] == "" {
		WriteProblem(w, r, errs.E(errs.Invalid, "request.content_type", "send the bundle as multipart/related with a boundary, the manifest first"))
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	first, err := mr.NextPart()
	if err != nil {
		WriteProblem(w, r, requestErr(err, "the request holds no manifest"))
		return
	}
	manifest, err := io.ReadAll(io.LimitReader(first, xmlsafe.Manifest.MaxBytes+1))
	if err != nil {
		WriteProblem(w, r, requestErr(err, "reading the manifest failed"))
		return
	}
	if int64(len(manifest)) > xmlsafe.Manifest.MaxBytes {
		WriteProblem(w, r, errs.E(errs.TooLarge, "xml.too_large", "the manifest is larger than %d bytes", xmlsafe.Manifest.MaxBytes).InPart(bundle.ManifestFile))
		return
	}
	res, err := a.Pipeline.Push(r.Context(), intake.Caller{Identity: c.Identity.String(), Org: c.Org.ID}, manifest, &multipartSource{mr: mr})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = errs.E(errs.TooLarge, "request.too_large", "the request is larger than %d bytes", mbe.Limit)
		}
		WriteProblem(w, r, err)
		return
	}
	// Drain what the client may still send (an epilogue) so the connection
	// can be reused; bounded by MaxBytesReader.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Location", "/v1/bundles/"+res.BundleID)
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	_, _ = w.Write(res.Receipt)
}

// requestErr classifies a failure to read the request body.
func requestErr(err error, msg string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errs.E(errs.TooLarge, "request.too_large", "the request is larger than %d bytes", mbe.Limit)
	}
	return errs.Wrap(errs.Invalid, "request.malformed", err, "%s", msg)
}

type multipartSource struct{ mr *multipart.Reader }

func (s *multipartSource) Next() (string, io.Reader, error) {
	p, err := s.mr.NextPart()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return "", nil, io.EOF
		}
		return "", nil, requestErr(err, "the multipart body is malformed")
	}
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(p.Header.Get("Content-ID")), "<"), ">")
	if !bundle.ValidPartID(id) {
		return "", nil, errs.E(errs.Invalid, "request.content_id", "every part after the manifest needs its part ID as Content-ID")
	}
	return id, p, nil
}

// deliveryJSON is one inbox entry.
type deliveryJSON struct {
	Seq      int64      `json:"seq"`
	BundleID string     `json:"bundle_id"`
	CaseID   string     `json:"case_id"`
	Purpose  string     `json:"purpose"`
	From     string     `json:"from"`
	Function string     `json:"function,omitempty"`
	Received time.Time  `json:"received"`
	AckedAt  *time.Time `json:"acked_at,omitempty"`
}

// inbox handles GET /v1/inbox?after=CURSOR&wait=SECONDS&limit=N.
func (a *API) inbox(w http.ResponseWriter, r *http.Request) {
	c, ok := a.caller(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	after, err1 := intParam(q.Get("after"), 0, 0, 1<<62)
	wait, err2 := intParam(q.Get("wait"), 0, 0, 60)
	limit, err3 := intParam(q.Get("limit"), 100, 1, 1000)
	if err := errors.Join(err1, err2, err3); err != nil {
		WriteProblem(w, r, errs.E(errs.Invalid, "request.query", "after, wait (0-60) and limit (1-1000) are whole numbers"))
		return
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		woken := a.wake.wait() // before the read: a commit after it wakes us
		list, err := a.Store.Inbox(r.Context(), c.Org.ID, after, int(limit))
		if err != nil {
			WriteProblem(w, r, err)
			return
		}
		if len(list) > 0 || !time.Now().Before(deadline) {
			out := make([]deliveryJSON, len(list))
			cursor := after
			for i, d := range list {
				out[i] = deliveryJSON{Seq: d.Seq, BundleID: d.BundleID, CaseID: d.CaseID, Purpose: d.Purpose, From: d.From,
					Function: d.Function, Received: d.Received.UTC(), AckedAt: d.AckedAt}
				cursor = d.Seq
			}
			writeJSON(w, http.StatusOK, map[string]any{"deliveries": out, "cursor": cursor})
			return
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-woken:
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

func intParam(s string, def, lo, hi int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("out of range")
	}
	return v, nil
}

// authorise loads a bundle and checks that the caller may read it: it is
// addressed to the caller's organisation, or the caller sent it. Anything
// else is 403 and an audit entry.
func (a *API) authorise(w http.ResponseWriter, r *http.Request, c *Caller, action string) (*store.Bundle, []store.Delivery, bool) {
	id := r.PathValue("id")
	b, err := a.Store.Bundle(r.Context(), id)
	if err != nil {
		if errs.KindOf(err) == errs.NotFound {
			_ = a.audit(r.Context(), c, "denied", "", "", "store.not_found", action+" "+clipID(id))
		}
		WriteProblem(w, r, err)
		return nil, nil, false
	}
	ds, err := a.Store.Deliveries(r.Context(), b.ID)
	if err != nil {
		WriteProblem(w, r, err)
		return nil, nil, false
	}
	allowed := b.SenderOrg == c.Org.ID && action != "ack"
	for _, d := range ds {
		if d.Recipient == c.Org.ID {
			allowed = true
		}
	}
	if !allowed {
		_ = a.audit(r.Context(), c, "denied", b.ID, b.CPR, "auth.not_addressed", action) // refused either way
		WriteProblem(w, r, errs.E(errs.Forbidden, "auth.not_addressed", "this bundle is not addressed to your organisation"))
		return nil, nil, false
	}
	return b, ds, true
}

// getBundle handles GET /v1/bundles/{id}: the countersigned manifest (the
// gateway's Acceptance, which carries the sender's signed manifest).
func (a *API) getBundle(w http.ResponseWriter, r *http.Request) {
	c, ok := a.caller(w, r)
	if !ok {
		return
	}
	b, _, ok := a.authorise(w, r, c, "read-manifest")
	if !ok {
		return
	}
	if err := a.audit(r.Context(), c, "read-manifest", b.ID, b.CPR, "ok", ""); err != nil {
		WriteProblem(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Acceptance)
}

// getPart handles GET /v1/bundles/{id}/parts/{part}: the part's bytes
// streamed from blob storage, its SHA-256 re-checked on the way out. The
// expected digest is announced in Repr-Digest (RFC 9530); if the stored
// bytes do not match it the response is aborted, never completed.
func (a *API) getPart(w http.ResponseWriter, r *http.Request) {
	c, ok := a.caller(w, r)
	if !ok {
		return
	}
	b, _, ok := a.authorise(w, r, c, "read-part")
	if !ok {
		return
	}
	partID := r.PathValue("part")
	var part *store.Part
	for i := range b.Parts {
		if b.Parts[i].ID == partID {
			part = &b.Parts[i]
		}
	}
	if part == nil {
		WriteProblem(w, r, errs.E(errs.NotFound, "part.not_found", "the bundle has no such part"))
		return
	}
	rc, err := a.Blobs.Get(r.Context(), part.BlobKey)
	if err != nil {
		if errs.KindOf(err) == errs.NotFound {
			a.Log.Error("integrity: a committed part's object is missing", zap.String("bundle_id", b.ID), zap.String("part", part.ID))
			err = errs.E(errs.Other, "integrity.missing_object", "the part's stored bytes are missing")
		}
		WriteProblem(w, r, err)
		return
	}
	defer rc.Close()
	if err := a.audit(r.Context(), c, "read-part", b.ID, b.CPR, "ok", part.ID); err != nil {
		WriteProblem(w, r, err)
		return
	}
	sum, _ := hex.DecodeString(part.SHA256)
	w.Header().Set("Content-Type", part.MediaType)
	w.Header().Set("Content-Length", strconv.FormatInt(part.Size, 10))
	w.Header().Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	w.Header().Set("Cache-Control", "no-store")
	h := sha256.New()
	hb := &holdback{w: w}
	n, err := io.Copy(hb, io.TeeReader(io.LimitReader(rc, part.Size+1), h))
	if err == nil && n == part.Size && digestIs(h, part.SHA256) {
		err = hb.flush()
		if err == nil {
			return
		}
	}
	if err == nil {
		a.Log.Error("integrity: a stored part does not match its digest; response aborted",
			zap.String("bundle_id", b.ID), zap.String("part", part.ID), zap.Int64("bytes", n))
	}
	panic(http.ErrAbortHandler)
}

// holdbackSize is how much of a part's end is withheld until its digest
// has been verified: a client never receives the complete length of a part
// whose stored bytes are wrong, whatever the transport buffers.
const holdbackSize = 64 << 10

// holdback passes writes through except the last holdbackSize bytes.
type holdback struct {
	w   io.Writer
	buf []byte
}

func (h *holdback) Write(p []byte) (int, error) {
	h.buf = append(h.buf, p...)
	if over := len(h.buf) - holdbackSize; over > 0 {
		if _, err := h.w.Write(h.buf[:over]); err != nil {
			return 0, err
		}
		h.buf = append(h.buf[:0], h.buf[over:]...)
	}
	return len(p), nil
}

func (h *holdback) flush() error {
	_, err := h.w.Write(h.buf)
	return err
}

func clipID(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return errs.Redact(s)
}

func digestIs(h hash.Hash, want string) bool {
	got := h.Sum(nil)
	w, err := hex.DecodeString(want)
	return err == nil && string(got) == string(w)
}

// ack handles POST /v1/bundles/{id}/ack.
func (a *API) ack(w http.ResponseWriter, r *http.Request) {
	c, ok := a.caller(w, r)
	if !ok {
		return
	}
	b, _, ok := a.authorise(w, r, c, "ack")
	if !ok {
		return
	}
	now := a.Now()
	err := a.Store.Ack(r.Context(), b.ID, c.Org.ID, c.Identity.String(), now, store.AuditEntry{
		At: now, Actor: c.Identity.String(), ActorOrg: c.Org.ID, Action: "ack", BundleID: b.ID, CPR: b.CPR, Outcome: "ok",
	})
	if err != nil {
		WriteProblem(w, r, err)
		return
	}
	ds, err := a.Store.Deliveries(r.Context(), b.ID)
	if err != nil {
		WriteProblem(w, r, err)
		return
	}
	var acked *time.Time
	for _, d := range ds {
		if d.Recipient == c.Org.ID && d.AckedAt != nil {
			acked = d.AckedAt
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"bundle_id": b.ID, "acked_at": acked})
}

// auditEntryJSON is the export form of an audit entry.
type auditEntryJSON struct {
	Seq      int64     `json:"seq"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	ActorOrg string    `json:"actor_org"`
	Action   string    `json:"action"`
	BundleID string    `json:"bundle_id,omitempty"`
	CPR      string    `json:"cpr,omitempty"`
	Outcome  string    `json:"outcome"`
	Detail   string    `json:"detail,omitempty"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash"`
}

func toJSON(es []store.AuditEntry) []auditEntryJSON {
	out := make([]auditEntryJSON, len(es))
	for i, e := range es {
		out[i] = auditEntryJSON{Seq: e.Seq, At: e.At, Actor: e.Actor, ActorOrg: e.ActorOrg, Action: e.Action, BundleID: e.BundleID,
			CPR: e.CPR, Outcome: e.Outcome, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash}
	}
	return out
}

// FromJSON converts exported entries back (gwctl audit verify recomputes
// the chain from them).
func FromJSON(es []auditEntryJSON) []store.AuditEntry {
	out := make([]store.AuditEntry, len(es))
	for i, e := range es {
		out[i] = store.AuditEntry{Seq: e.Seq, At: e.At, Actor: e.Actor, ActorOrg: e.ActorOrg, Action: e.Action, BundleID: e.BundleID,
			CPR: e.CPR, Outcome: e.Outcome, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash}
	}
	return out
}

// AuditEntryJSON is the exported audit entry type (for clients).
type AuditEntryJSON = auditEntryJSON

func (a *API) operator(w http.ResponseWriter, r *http.Request) (*Caller, bool) {
	c, ok := a.caller(w, r)
	if !ok {
		return nil, false
	}
	if c.Org.Kind != registry.KindOperator {
		a.audit(r.Context(), c, "denied", "", "", "auth.operator_only", r.URL.Path)
		WriteProblem(w, r, errs.E(errs.Forbidden, "auth.operator_only", "only an operator certificate may read the audit log"))
		return nil, false
	}
	return c, true
}

// auditList handles GET /v1/audit?after=&limit= (operators only): the
// chain, for gwctl audit verify.
func (a *API) auditList(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.operator(w, r); !ok {
		return
	}
	after, err1 := intParam(r.URL.Query().Get("after"), 0, 0, 1<<62)
	limit, err2 := intParam(r.URL.Query().Get("limit"), 1000, 1, 10000)
	if errors.Join(err1, err2) != nil {
		WriteProblem(w, r, errs.E(errs.Invalid, "request.query", "after and limit (1-10000) are whole numbers"))
		return
	}
	es, err := a.Store.AuditEntries(r.Context(), after, int(limit))
	if err != nil {
		WriteProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": toJSON(es)})
}

// auditSearch handles POST /v1/audit/search {"cpr": "..."} (operators
// only): one citizen's entries, for an access request under GDPR art. 15.
// The CPR number travels in the body, never in a URL that could be logged.
func (a *API) auditSearch(w http.ResponseWriter, r *http.Request) {
	c, ok := a.operator(w, r)
	if !ok {
		return
	}
	var q struct {
		CPR string `json:"cpr"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil || !ident.ValidCPRFormat(q.CPR) {
		WriteProblem(w, r, errs.E(errs.Invalid, "request.cpr", `send {"cpr": "<ten digits>"}`))
		return
	}
	es, err := a.Store.AuditByCPR(r.Context(), q.CPR)
	if err != nil {
		WriteProblem(w, r, err)
		return
	}
	a.audit(r.Context(), c, "audit-export", "", q.CPR, "ok", "")
	writeJSON(w, http.StatusOK, map[string]any{"entries": toJSON(es)})
}

// notifier wakes long-polling readers when this process commits.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}
