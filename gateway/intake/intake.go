// Package intake turns a pushed bundle into a committed one, or into
// nothing at all.
//
// Push runs the pipeline in the order of GUIDE.md: the manifest's limits and
// schema, the sender's signature under the strict policy, the signer's and
// the client certificate's organisation against the manifest's sender,
// idempotency (same bundle ID: same bytes answers with the stored receipt,
// other bytes is a conflict), routing, then every part streamed to blob
// storage while its size, digest and (for documents) schema are checked,
// then the countersignature and one store transaction for the bundle, its
// deliveries and the audit entry. Until that transaction commits nothing is
// visible; a part uploaded by a push that fails is deleted, and one left by
// a crash is an unreferenced object the janitor removes.
package intake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/route"
	"github.com/rehabgw/rehabgw/gateway/store"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

// BlobPrefix is the key prefix of every part object.
const BlobPrefix = "parts/"

// MaxPushDuration bounds a push from its first byte to its commit. It must
// stay well under the janitor's grace period (config.JanitorGrace, 6 h):
// the janitor deletes unreferenced objects older than that, and an object
// of a push still running must never be among them. A push that takes
// longer fails and commits nothing; a retry starts over.
const MaxPushDuration = 2 * time.Hour

// Caller is the authenticated client of a push (from its TLS certificate).
type Caller struct {
	Identity string // CVR:...-UID:...
	Org      string // registry ID
}

// Source yields the parts of a pushed bundle after its manifest: Next
// returns the next part's ID and its bytes, and io.EOF after the last. The
// reader is valid until the next call.
type Source interface {
	Next() (partID string, r io.Reader, err error)
}

// Result is the outcome of an accepted push.
type Result struct {
	BundleID string
	Receipt  []byte // the countersigned acceptance
	Created  bool   // false: an identical bundle was already accepted
}

// Pipeline holds what a push needs. All fields are required except Log and Now.
type Pipeline struct {
	Validator *bundle.Validator
	Trust     bundle.Trust
	Store     store.Store
	Blobs     blob.Store
	Signer    *xmlsig.Signer // the gateway's countersigning key
	Gateway   string         // the gateway's identity, CVR:...-UID:...
	Log       *zap.Logger
	Now       func() time.Time
	// Committed is called after every commit that created a bundle (wakes
	// long-polling inbox readers in this process).
	Committed func()
	// MaxDuration bounds one push (0 or more than MaxPushDuration:
	// MaxPushDuration).
	MaxDuration time.Duration
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) log() *zap.Logger {
	if p.Log != nil {
		return p.Log
	}
	return zap.NewNop()
}

// Push accepts a bundle or refuses it with an *errs.Error (or errs.List).
// On refusal nothing is stored but an audit entry of the refusal.
func (p *Pipeline) Push(ctx context.Context, c Caller, manifest []byte, src Source) (res *Result, err error) {
	start := p.now()
	maxDur := p.MaxDuration
	if maxDur <= 0 || maxDur > MaxPushDuration {
		maxDur = MaxPushDuration
	}
	ctx, cancel := context.WithTimeout(ctx, maxDur)
	defer cancel()
	var bundleID, cpr string
	defer func() {
		if err == nil {
			return
		}
		// An audit entry for every refusal; it names no citizen unless the
		// manifest's signature held (an unverified CPR proves nothing).
		if aerr := p.Store.Audit(context.WithoutCancel(ctx), store.AuditEntry{
			At: p.now(), Actor: c.Identity, ActorOrg: c.Org, Action: "push-refused",
			BundleID: bundleID, CPR: cpr, Outcome: errs.CodeOf(err),
		}); aerr != nil {
			p.log().Warn("audit of a refused push failed", zap.Error(aerr))
		}
		p.log().Info("push refused", zap.String("org", c.Org), zap.String("bundle_id", bundleID),
			zap.String("code", errs.CodeOf(err)), zap.Duration("duration", p.now().Sub(start)))
	}()

	m, ver, err := p.Validator.VerifyManifest(manifest, p.Trust)
	if m != nil && ver != nil {
		// The signature held: the citizen named is the one the sender
		// vouches for, so the refusal belongs in that citizen's log too.
		bundleID, cpr = m.BundleID, m.Citizen.CPR
	}
	if err != nil {
		return nil, err
	}
	if m.Sender.Organisation != c.Org {
		return nil, errs.E(errs.Forbidden, "auth.sender_mismatch", "the client certificate belongs to %s, the manifest's sender is another organisation", c.Org)
	}
	sum := sha256.Sum256(manifest)
	manifestSHA := hex.EncodeToString(sum[:])

	// Idempotency before any upload: a resend of a 200 MB bundle costs nothing.
	if prev, err := p.Store.Bundle(ctx, m.BundleID); err == nil {
		if prev.ManifestSHA256 != manifestSHA {
			return nil, errs.E(errs.Conflict, "bundle.conflict", "bundle %s was accepted before with other content", m.BundleID)
		}
		if aerr := p.Store.Audit(ctx, store.AuditEntry{At: p.now(), Actor: c.Identity, ActorOrg: c.Org, Action: "push-duplicate",
			BundleID: prev.ID, CPR: prev.CPR, Outcome: "ok"}); aerr != nil {
			return nil, aerr
		}
		return &Result{BundleID: prev.ID, Receipt: prev.Acceptance}, nil
	} else if errs.KindOf(err) != errs.NotFound {
		return nil, err
	}

	var original *route.Original
	if m.InReplyTo != "" {
		if ob, err := p.Store.Bundle(ctx, m.InReplyTo); err == nil {
			original = route.OriginalOf(ob)
		} else if errs.KindOf(err) != errs.NotFound {
			return nil, err
		}
	}
	recipients, err := route.For(p.Validator.Registry(), m, original)
	if err != nil {
		return nil, err
	}

	parts, uploaded, err := p.storeParts(ctx, m, src)
	if err != nil {
		p.cleanup(uploaded)
		return nil, err
	}

	received := p.now()
	acc, err := bundle.NewAcceptance(manifest, m, ver.Certificate, p.Gateway, received)
	if err != nil {
		p.cleanup(uploaded)
		return nil, errs.Wrap(errs.Other, "internal", err, "countersigning failed")
	}
	receipt, err := bundle.Countersign(p.Signer, acc)
	if err != nil {
		p.cleanup(uploaded)
		return nil, errs.Wrap(errs.Other, "internal", err, "countersigning failed")
	}
	b := &store.Bundle{
		ID: m.BundleID, CaseID: m.CaseID, Purpose: string(m.Purpose),
		SenderOrg: m.Sender.Organisation, SenderIdentity: acc.Sender.Identity, CPR: m.Citizen.CPR,
		MeetingDate: m.MeetingDate, InReplyTo: m.InReplyTo, Received: acc.Received,
		ManifestSHA256: manifestSHA, Manifest: manifest, Acceptance: receipt, Parts: parts,
	}
	deliveries := make([]store.Delivery, len(recipients))
	for i, r := range recipients {
		deliveries[i] = store.Delivery{BundleID: b.ID, Recipient: r.Org, Function: r.Function, Created: acc.Received}
	}
	stored, created, err := p.Store.CommitBundle(ctx, b, deliveries, store.AuditEntry{
		At: acc.Received, Actor: c.Identity, ActorOrg: c.Org, Action: "push",
		BundleID: b.ID, CPR: b.CPR, Outcome: "ok",
	})
	if err != nil && errs.KindOf(err) == errs.Unavailable {
		// The outcome is unknown: the connection may have failed after the
		// database committed. Ask again before deleting anything.
		stored, created, err = p.commitOutcome(ctx, b, receipt, err, uploaded)
	} else if err != nil || !created {
		// A definite refusal, or a concurrent identical push won the race:
		// this push's objects are referenced by nothing.
		p.cleanup(uploaded)
	}
	if err != nil {
		if errs.KindOf(err) == errs.Conflict {
			return nil, errs.E(errs.Conflict, "bundle.conflict", "bundle %s was accepted before with other content", m.BundleID)
		}
		return nil, err
	}
	if created && p.Committed != nil {
		p.Committed()
	}
	p.log().Info("bundle accepted", zap.String("bundle_id", b.ID), zap.String("case_id", b.CaseID),
		zap.String("org", c.Org), zap.String("purpose", b.Purpose), zap.Bool("created", created),
		zap.Int64("bytes", m.TotalSize()), zap.Duration("duration", p.now().Sub(start)))
	return &Result{BundleID: stored.ID, Receipt: stored.Acceptance, Created: created}, nil
}

// commitOutcome settles a commit whose outcome is unknown. If the bundle
// is in the store with this push's manifest, the commit happened (or an
// identical push's did) and the push succeeded. Otherwise the push fails
// as unavailable and a retry settles it; the objects stay in every case,
// because "not found" right after a lost reply proves nothing: the server
// may still be finishing the COMMIT that another connection cannot see yet.
// The janitor deletes them hours later if no committed bundle references
// them.
func (p *Pipeline) commitOutcome(ctx context.Context, b *store.Bundle, receipt []byte, commitErr error, uploaded []string) (*store.Bundle, bool, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		got, err := p.Store.Bundle(rctx, b.ID)
		switch {
		case err == nil && got.ManifestSHA256 == b.ManifestSHA256:
			p.log().Warn("commit reply lost; the bundle was committed", zap.String("bundle_id", b.ID))
			created := string(got.Acceptance) == string(receipt)
			if !created {
				p.cleanup(uploaded) // an identical concurrent push committed its own objects
			}
			return got, created, nil
		case err == nil:
			p.cleanup(uploaded)
			return nil, false, errs.E(errs.Conflict, "store.conflict", "another bundle with this ID was committed")
		case errs.KindOf(err) == errs.NotFound:
			// Possibly not yet visible: look again, then give up without deleting.
		}
		lastErr = err
		select {
		case <-rctx.Done():
			attempt = 5
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
	p.log().Warn("commit outcome unknown; objects left for the janitor", zap.String("bundle_id", b.ID), zap.Error(lastErr))
	return nil, false, commitErr
}

// storeParts streams every part to blob storage through its PartCheck. It
// returns the stored parts in manifest order and every key it wrote (for
// cleanup, also on error).
func (p *Pipeline) storeParts(ctx context.Context, m *bundle.Manifest, src Source) ([]store.Part, []string, error) {
	upload := newUploadID()
	byID := map[string]int{}
	for i, mp := range m.Parts {
		byID[mp.ID] = i
	}
	parts := make([]store.Part, len(m.Parts))
	done := make([]bool, len(m.Parts))
	var keys []string
	// A structured document's checks (limits, schema, rules: CPU only) run
	// while the next part uploads, instead of after it.
	var checks sync.WaitGroup
	checkErr := make([]error, len(m.Parts))
	defer checks.Wait()
	for {
		id, r, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, keys, err
		}
		i, ok := byID[id]
		if !ok {
			return nil, keys, errs.E(errs.Invalid, "part.unexpected", "the request holds a part the manifest does not list").InPart(clip(id))
		}
		if done[i] {
			return nil, keys, errs.E(errs.Invalid, "part.repeated", "the request holds this part twice").InPart(id)
		}
		done[i] = true
		mp := m.Parts[i]
		key := BlobPrefix + upload + "/" + fmt.Sprintf("%03d", i)
		keys = append(keys, key)
		pc := p.Validator.BeginPart(m, mp)
		tee := &checkedReader{r: r, w: pc}
		if err := p.Blobs.Put(ctx, key, tee, mp.Size); err != nil {
			switch {
			case tee.werr != nil: // the part broke its manifest entry while streaming
				return nil, keys, tee.werr
			case errors.Is(tee.rerr, io.EOF) && tee.n < mp.Size:
				return nil, keys, errs.E(errs.Invalid, "part.size_mismatch", "part has %d bytes, its manifest entry declares %d", tee.n, mp.Size).InPart(id)
			case tee.rerr != nil && !errors.Is(tee.rerr, io.EOF):
				if errs.KindOf(tee.rerr) != errs.Other {
					return nil, keys, tee.rerr
				}
				return nil, keys, errs.Wrap(errs.Invalid, "request.truncated", tee.rerr, "the request ended inside a part").InPart(id)
			}
			return nil, keys, err
		}
		// Bytes beyond the declared size are a size mismatch too.
		if _, err := io.Copy(pc, io.LimitReader(r, 1)); err != nil {
			return nil, keys, err
		}
		if mp.Kind.Structured() {
			checks.Add(1)
			go func() {
				defer checks.Done()
				checkErr[i] = pc.Finish()
			}()
		} else if err := pc.Finish(); err != nil {
			return nil, keys, err
		}
		parts[i] = store.Part{ID: mp.ID, Kind: string(mp.Kind), MediaType: mp.MediaType, Size: mp.Size, SHA256: mp.SHA256, BlobKey: key}
	}
	checks.Wait()
	for _, err := range checkErr {
		if err != nil {
			return nil, keys, err
		}
	}
	for i, ok := range done {
		if !ok {
			return nil, keys, errs.E(errs.Invalid, "part.missing", "the manifest lists this part but the request does not hold it").InPart(m.Parts[i].ID)
		}
	}
	return parts, keys, nil
}

// checkedReader feeds everything read through w (the PartCheck), so a part
// that breaks its manifest entry stops the upload at once.
type checkedReader struct {
	r    io.Reader
	w    io.Writer
	n    int64
	werr error
	rerr error
}

func (c *checkedReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		if _, werr := c.w.Write(b[:n]); werr != nil {
			c.werr = werr
			return 0, werr
		}
		c.n += int64(n)
	}
	if err != nil {
		c.rerr = err
	}
	return n, err
}

// cleanup deletes objects of a push that will not be committed. It runs
// detached from the request (which may be cancelled) with its own bound.
func (p *Pipeline) cleanup(keys []string) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range keys {
		if err := p.Blobs.Delete(ctx, k); err != nil {
			p.log().Warn("could not delete the object of a refused push; the janitor will", zap.String("key", k), zap.Error(err))
		}
	}
}

// Janitor deletes part objects older than grace that no committed bundle
// references: the leftovers of pushes interrupted by a crash. Returns the
// number deleted.
func Janitor(ctx context.Context, s store.Store, b blob.Store, grace time.Duration, now time.Time) (int, error) {
	n := 0
	err := b.List(ctx, BlobPrefix, now.Add(-grace), func(key string) error {
		ref, err := s.BlobReferenced(ctx, key)
		if err != nil || ref {
			return err
		}
		if err := b.Delete(ctx, key); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80]
	}
	return errs.Redact(s)
}
