// Package storetest is the conformance suite every store.Store
// implementation passes: call Run from the implementation's tests with a
// function that opens a fresh, empty store.
//
// Besides the interface's documented behaviour it checks the conventions
// the implementations share (see gateway/store/store_impl.go): times are
// stored in UTC truncated to microseconds, CommitBundle appends its audit
// entry only when it creates the bundle and fills the entry's empty
// BundleID and CPR from the bundle, and every failure is an *errs.Error with
// a store.* code.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/store"
)

// Run runs the whole suite. open returns a new, empty store; the suite
// closes it at the end of each subtest (Close may be called twice).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	fresh := func(t *testing.T) store.Store {
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Empty", testEmpty},
		{"CommitReadBack", testCommitReadBack},
		{"CommitMinimal", testCommitMinimal},
		{"CommitLarge", testCommitLarge},
		{"CommitIdentical", testCommitIdentical},
		{"CommitConflict", testCommitConflict},
		{"CommitAtomic", testCommitAtomic},
		{"CommitInvalid", testCommitInvalid},
		{"Text", testText},
		{"NotFound", testNotFound},
		{"Inbox", testInbox},
		{"Ack", testAck},
		{"AckAllFunctions", testAckAllFunctions},
		{"AuditChain", testAuditChain},
		{"AuditByCPR", testAuditByCPR},
		{"BlobReferenced", testBlobReferenced},
		{"ContextCanceled", testContextCanceled},
		{"PingClose", testPingClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
	t.Run("Concurrent", func(t *testing.T) { Concurrent(t, fresh(t)) })
}

// Concurrent commits, audits and acks from 8 goroutines spread over the
// given stores, which must share one empty database (several stores stand
// for several processes), while a reader polls the inbox. It checks that
// delivery Seqs follow commit order without gaps visible to the reader (it
// never sees Seq n+1 before n), that a commit started after another
// returned gets a higher Seq, and that the audit chain is one unbroken line.
func Concurrent(t *testing.T, stores ...store.Store) {
	const (
		writers   = 8
		perWriter = 20
	)
	ctx := t.Context()
	s0 := stores[0]
	base, err := s0.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recipient := "R-" + uuid.NewString()
	var (
		maxDone    atomic.Int64 // highest Seq of a commit that has returned
		deliveries atomic.Int64 // deliveries committed
		audits     atomic.Int64 // audit entries appended
		done       = make(chan struct{})
		wg         sync.WaitGroup
	)
	maxDone.Store(base)

	// The reader: every Seq it sees must be the one after the last.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		last, lastTop := base, base
		finished := false
		for {
			select {
			case <-done:
				finished = true
			default:
			}
			top, err := s0.LastSeq(ctx)
			if err != nil {
				t.Errorf("reader: LastSeq: %v", err)
				return
			}
			if top < lastTop {
				t.Errorf("reader: LastSeq went back from %d to %d", lastTop, top)
				return
			}
			lastTop = top
			ds, err := s0.Inbox(ctx, recipient, last, 7)
			if err != nil {
				t.Errorf("reader: Inbox: %v", err)
				return
			}
			for _, d := range ds {
				if d.Seq != last+1 {
					t.Errorf("reader: saw seq %d after %d: a gap or reordering", d.Seq, last)
					return
				}
				last = d.Seq
			}
			if finished && len(ds) == 0 {
				if want := base + deliveries.Load(); last != want {
					t.Errorf("reader: ended at seq %d, want %d", last, want)
				}
				return
			}
		}
	}()

	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i := range perWriter {
				b := NewBundle(fmt.Sprintf("w%d-%d-%s", w, i, uuid.NewString()), 1)
				ds := []store.Delivery{{Recipient: recipient, Function: "sundhedskoordinator"}}
				if i%3 == 0 {
					ds = append(ds, store.Delivery{Recipient: recipient, Function: "klinisk-funktion"})
				}
				floor := maxDone.Load()
				if _, created, err := s.CommitBundle(ctx, b, ds, Entry("push", b.CPR)); err != nil || !created {
					t.Errorf("writer %d: CommitBundle: created=%v err=%v", w, created, err)
					return
				}
				deliveries.Add(int64(len(ds)))
				audits.Add(1)
				got, err := s.Deliveries(ctx, b.ID)
				if err != nil || len(got) != len(ds) {
					t.Errorf("writer %d: Deliveries: %d, %v", w, len(got), err)
					return
				}
				for j, d := range got {
					if d.Seq <= floor {
						t.Errorf("writer %d: seq %d not above %d, which was committed before this commit began", w, d.Seq, floor)
					}
					if j > 0 && d.Seq != got[j-1].Seq+1 {
						t.Errorf("writer %d: the deliveries of one commit are not consecutive: %d, %d", w, got[j-1].Seq, d.Seq)
					}
				}
				for top := got[len(got)-1].Seq; ; {
					cur := maxDone.Load()
					if cur >= top || maxDone.CompareAndSwap(cur, top) {
						break
					}
				}
				if err := s.Audit(ctx, Entry("read-manifest", b.CPR)); err != nil {
					t.Errorf("writer %d: Audit: %v", w, err)
					return
				}
				audits.Add(1)
				if i%4 == 1 {
					if err := s.Ack(ctx, b.ID, recipient, "CVR:1-UID:reader", time.Now(), Entry("ack", "")); err != nil {
						t.Errorf("writer %d: Ack: %v", w, err)
						return
					}
					audits.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	<-readerDone
	if t.Failed() {
		return
	}
	entries := AllAudit(t, s0)
	if int64(len(entries)) != audits.Load() {
		t.Fatalf("%d audit entries, want %d", len(entries), audits.Load())
	}
	CheckChain(t, entries)
	for _, s := range stores[1:] {
		if top, err := s.LastSeq(ctx); err != nil || top != base+deliveries.Load() {
			t.Errorf("another store's LastSeq = %d, %v; want %d", top, err, base+deliveries.Load())
		}
	}
}

// NewBundle returns a bundle with a unique manifest and nparts parts with
// unique blob keys, received now (with nanoseconds, in a non-UTC zone).
func NewBundle(id string, nparts int) *store.Bundle {
	manifest := []byte(`<?xml version="1.0"?><Manifest id="` + id + `"><Nonce>` + rand.Text() + `</Nonce></Manifest>`)
	sum := sha256.Sum256(manifest)
	b := &store.Bundle{
		ID:             id,
		CaseID:         "case-" + id,
		Purpose:        "forberedelse",
		SenderOrg:      "kommune-0101",
		SenderIdentity: "CVR:29189846-UID:1234",
		CPR:            "0101" + fmt.Sprintf("%06d", time.Now().UnixNano()%1000000),
		Received:       time.Now().In(time.FixedZone("CET", 3600)),
		ManifestSHA256: hex.EncodeToString(sum[:]),
		Manifest:       manifest,
		Acceptance:     []byte("<Acceptance>" + id + "</Acceptance>"),
	}
	for i := range nparts {
		data := fmt.Appendf(nil, "part %d of %s", i, id)
		ps := sha256.Sum256(data)
		b.Parts = append(b.Parts, store.Part{
			ID:        fmt.Sprintf("p%d", nparts-i), // not in sorted order
			Kind:      "document",
			MediaType: "application/pdf",
			Size:      int64(len(data)),
			SHA256:    hex.EncodeToString(ps[:]),
			BlobKey:   "blob/" + id + "/" + uuid.NewString(),
		})
	}
	return b
}

// Entry returns an audit entry for action about a citizen.
func Entry(action, cpr string) store.AuditEntry {
	return store.AuditEntry{
		At:       time.Now(),
		Actor:    "CVR:29189846-UID:1234",
		ActorOrg: "kommune-0101",
		Action:   action,
		CPR:      cpr,
		Outcome:  "ok",
		Detail:   "conformance test",
	}
}

// AllAudit reads the whole audit log, page by page.
func AllAudit(t *testing.T, s store.Store) []store.AuditEntry {
	t.Helper()
	var out []store.AuditEntry
	var after int64
	for {
		page, err := s.AuditEntries(t.Context(), after, 100)
		if err != nil {
			t.Fatalf("AuditEntries: %v", err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

// CheckChain checks that entries are the whole log: Seq 1, 2, ... and an
// unbroken hash chain.
func CheckChain(t *testing.T, entries []store.AuditEntry) {
	t.Helper()
	for i, e := range entries {
		if e.Seq != int64(i+1) {
			t.Fatalf("audit entry %d has seq %d", i, e.Seq)
		}
	}
	if bad := store.VerifyChain("", entries); bad != 0 {
		t.Fatalf("audit chain broken at seq %d", bad)
	}
}

// norm is how a store keeps a time.
func norm(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// bundleView is a Bundle with times as text (with their zone) and bytes as
// strings, for comparison.
type bundleView struct {
	ID, CaseID, Purpose, SenderOrg, SenderIdentity, CPR string
	MeetingDate, InReplyTo, Received, ManifestSHA256    string
	Manifest, Acceptance                                string
	Parts                                               []store.Part
}

func timeText(t time.Time) string { return t.Format(time.RFC3339Nano) + " " + t.Location().String() }

func viewOf(b *store.Bundle) bundleView {
	v := bundleView{
		ID: b.ID, CaseID: b.CaseID, Purpose: b.Purpose, SenderOrg: b.SenderOrg,
		SenderIdentity: b.SenderIdentity, CPR: b.CPR, InReplyTo: b.InReplyTo,
		Received: timeText(b.Received), ManifestSHA256: b.ManifestSHA256,
		Manifest: string(b.Manifest), Acceptance: string(b.Acceptance),
	}
	if b.MeetingDate != nil {
		v.MeetingDate = timeText(*b.MeetingDate)
	}
	if len(b.Parts) > 0 {
		v.Parts = b.Parts
	}
	return v
}

// stored returns b as the store keeps it.
func stored(b *store.Bundle) *store.Bundle {
	c := *b
	c.Received = norm(b.Received)
	if b.MeetingDate != nil {
		m := norm(*b.MeetingDate)
		c.MeetingDate = &m
	}
	return &c
}

func sameBundle(t *testing.T, what string, got, want *store.Bundle) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil bundle", what)
	}
	if !bytes.Equal(got.Manifest, want.Manifest) {
		t.Errorf("%s: manifest bytes differ (%d bytes, want %d)", what, len(got.Manifest), len(want.Manifest))
	}
	if !bytes.Equal(got.Acceptance, want.Acceptance) {
		t.Errorf("%s: acceptance bytes differ (%d bytes, want %d)", what, len(got.Acceptance), len(want.Acceptance))
	}
	gv, wv := viewOf(got), viewOf(want)
	gv.Manifest, wv.Manifest, gv.Acceptance, wv.Acceptance = "", "", "", ""
	if !reflect.DeepEqual(gv, wv) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, gv, wv)
	}
}

func wantKind(t *testing.T, what string, err error, kind errs.Kind, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, kind)
	}
	if errs.KindOf(err) != kind || errs.CodeOf(err) != code {
		t.Fatalf("%s: %v (kind %v, code %s), want kind %v, code %s", what, err, errs.KindOf(err), errs.CodeOf(err), kind, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, s store.Store, b *store.Bundle, ds ...store.Delivery) *store.Bundle {
	t.Helper()
	got, created, err := s.CommitBundle(t.Context(), b, ds, Entry("push", b.CPR))
	if err != nil || !created {
		t.Fatalf("CommitBundle(%s): created=%v err=%v", b.ID, created, err)
	}
	return got
}

func to(recipient, function string) store.Delivery {
	return store.Delivery{Recipient: recipient, Function: function}
}

func seqs(ds []store.Delivery) []int64 {
	out := []int64{}
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

func lastSeq(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.LastSeq(t.Context())
	must(t, err)
	return n
}

func testEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n := lastSeq(t, s); n != 0 {
		t.Errorf("LastSeq = %d on an empty store", n)
	}
	if es, err := s.AuditEntries(ctx, 0, 10); err != nil || len(es) != 0 {
		t.Errorf("AuditEntries = %v, %v", es, err)
	}
	if ds, err := s.Inbox(ctx, "anyone", 0, 10); err != nil || len(ds) != 0 {
		t.Errorf("Inbox = %v, %v", ds, err)
	}
	must(t, s.Ping(ctx))
}

func allBytes() []byte {
	var b []byte
	for range 3 {
		for i := range 256 {
			b = append(b, byte(i))
		}
	}
	return append(b, 0xff, 0xfe, 0x00, 0xc3) // invalid UTF-8, a NUL, a truncated sequence
}

func testCommitReadBack(t *testing.T, s store.Store) {
	ctx := t.Context()
	cet := time.FixedZone("CET", 3600)
	meeting := time.Date(2025, 4, 1, 13, 30, 0, 999, cet)
	b := NewBundle(uuid.NewString(), 3)
	b.Received = time.Date(2025, 3, 14, 9, 26, 53, 589793238, cet)
	b.MeetingDate = &meeting
	b.InReplyTo = uuid.NewString()
	b.Manifest = allBytes()
	sum := sha256.Sum256(b.Manifest)
	b.ManifestSHA256 = hex.EncodeToString(sum[:])
	b.Acceptance = append([]byte("<Acceptance>\r\n\x00"), allBytes()...)
	before := *b
	before.Parts = append([]store.Part(nil), b.Parts...)
	created := b.Received.Add(1500 * time.Nanosecond)
	audit := Entry("push", b.CPR)
	audit.BundleID = b.ID

	got, ok, err := s.CommitBundle(ctx, b,
		[]store.Delivery{{Recipient: "region-hovedstaden", Function: "sundhedskoordinator", Created: created}, to("kommune-0147", "")},
		audit)
	if err != nil || !ok {
		t.Fatalf("CommitBundle: created=%v err=%v", ok, err)
	}
	if !reflect.DeepEqual(viewOf(b), viewOf(&before)) || b.MeetingDate != &meeting {
		t.Errorf("CommitBundle modified its argument")
	}
	want := stored(b)
	sameBundle(t, "CommitBundle result", got, want)
	read, err := s.Bundle(ctx, b.ID)
	must(t, err)
	sameBundle(t, "Bundle", read, want)
	if read.Received.Location() != time.UTC || read.MeetingDate.Location() != time.UTC {
		t.Errorf("times not returned in UTC: %v, %v", read.Received, read.MeetingDate)
	}

	ds, err := s.Deliveries(ctx, b.ID)
	must(t, err)
	if len(ds) != 2 || ds[0].Seq <= 0 || ds[1].Seq != ds[0].Seq+1 {
		t.Fatalf("Deliveries seqs %v, want two consecutive", seqs(ds))
	}
	wantD := []store.Delivery{
		{Seq: ds[0].Seq, BundleID: b.ID, Recipient: "region-hovedstaden", Function: "sundhedskoordinator",
			Created: norm(created), CaseID: b.CaseID, Purpose: b.Purpose, From: b.SenderOrg, Received: norm(b.Received)},
		{Seq: ds[1].Seq, BundleID: b.ID, Recipient: "kommune-0147", Function: "",
			Created: norm(b.Received), CaseID: b.CaseID, Purpose: b.Purpose, From: b.SenderOrg, Received: norm(b.Received)},
	}
	sameDeliveries(t, "Deliveries", ds, wantD)
	if n := lastSeq(t, s); n != ds[1].Seq {
		t.Errorf("LastSeq = %d, want %d", n, ds[1].Seq)
	}

	entries := AllAudit(t, s)
	if len(entries) != 1 {
		t.Fatalf("%d audit entries after one commit", len(entries))
	}
	e := entries[0]
	audit.Seq, audit.At, audit.PrevHash, audit.Hash = 1, norm(audit.At), "", e.Hash
	if e != audit || e.At.Location() != time.UTC {
		t.Errorf("audit entry\n got %+v\nwant %+v", e, audit)
	}
	CheckChain(t, entries)
}

func sameDeliveries(t *testing.T, what string, got, want []store.Delivery) {
	t.Helper()
	view := func(ds []store.Delivery) []string {
		var out []string
		for _, d := range ds {
			acked := "-"
			if d.AckedAt != nil {
				acked = timeText(*d.AckedAt)
			}
			out = append(out, fmt.Sprintf("%d %s %s/%s created=%s acked=%s by=%q case=%s purpose=%s from=%s received=%s",
				d.Seq, d.BundleID, d.Recipient, d.Function, timeText(d.Created), acked, d.AckedBy,
				d.CaseID, d.Purpose, d.From, timeText(d.Received)))
		}
		return out
	}
	g, w := view(got), view(want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %q\nwant %q", what, g, w)
	}
}

func testCommitMinimal(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := &store.Bundle{ID: uuid.NewString(), Received: time.Unix(1700000000, 123456789), ManifestSHA256: "x"}
	got := commit(t, s, b)
	want := stored(b)
	want.Manifest, want.Acceptance = []byte{}, []byte{}
	sameBundle(t, "CommitBundle result", got, want)
	read, err := s.Bundle(ctx, b.ID)
	must(t, err)
	sameBundle(t, "Bundle", read, want)
	if read.MeetingDate != nil || len(read.Parts) != 0 {
		t.Errorf("Bundle = %+v, want no meeting date and no parts", read)
	}
	if ds, err := s.Deliveries(ctx, b.ID); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries = %v, %v; want none", ds, err)
	}
	if n := lastSeq(t, s); n != 0 {
		t.Errorf("LastSeq = %d with no deliveries", n)
	}
}

func testCommitLarge(t *testing.T, s store.Store) {
	b := NewBundle(uuid.NewString(), 200)
	b.Manifest = make([]byte, 3<<20)
	_, _ = rand.Read(b.Manifest)
	b.Acceptance = bytes.Repeat([]byte{0}, 1<<20)
	got := commit(t, s, b, to("kommune-0147", ""))
	sameBundle(t, "CommitBundle result", got, stored(b))
	read, err := s.Bundle(t.Context(), b.ID)
	must(t, err)
	sameBundle(t, "Bundle", read, stored(b))
}

func testCommitIdentical(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := NewBundle(uuid.NewString(), 2)
	first := commit(t, s, b, to("region-hovedstaden", "sundhedskoordinator"))
	ds1, err := s.Deliveries(ctx, b.ID)
	must(t, err)
	top, audits := lastSeq(t, s), len(AllAudit(t, s))

	again := *b
	again.Received = b.Received.Add(time.Hour)
	again.Acceptance = []byte("a later acceptance")
	again.Parts = []store.Part{{ID: "p9", BlobKey: "blob/other/" + uuid.NewString()}}
	got, created, err := s.CommitBundle(ctx, &again,
		[]store.Delivery{to("region-hovedstaden", "sundhedskoordinator"), to("kommune-0147", "")}, Entry("push", b.CPR))
	if err != nil || created {
		t.Fatalf("identical CommitBundle: created=%v err=%v", created, err)
	}
	sameBundle(t, "identical CommitBundle result", got, first)
	ds2, err := s.Deliveries(ctx, b.ID)
	must(t, err)
	sameDeliveries(t, "deliveries after identical commit", ds2, ds1)
	if n := lastSeq(t, s); n != top {
		t.Errorf("LastSeq %d after identical commit, was %d", n, top)
	}
	if n := len(AllAudit(t, s)); n != audits {
		t.Errorf("%d audit entries after identical commit, was %d", n, audits)
	}
	if ok, err := s.BlobReferenced(ctx, again.Parts[0].BlobKey); err != nil || ok {
		t.Errorf("BlobReferenced(part of the ignored commit) = %v, %v", ok, err)
	}
}

func testCommitConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := NewBundle(uuid.NewString(), 2)
	first := commit(t, s, b, to("region-hovedstaden", "sundhedskoordinator"))
	top, audits := lastSeq(t, s), len(AllAudit(t, s))

	other := NewBundle(b.ID, 1)
	_, created, err := s.CommitBundle(ctx, other, []store.Delivery{to("kommune-0147", "")}, Entry("push", other.CPR))
	wantKind(t, "conflicting CommitBundle", err, errs.Conflict, "store.conflict")
	if created {
		t.Errorf("conflicting CommitBundle reports created")
	}
	read, err := s.Bundle(ctx, b.ID)
	must(t, err)
	sameBundle(t, "Bundle after conflict", read, first)
	if n := lastSeq(t, s); n != top {
		t.Errorf("LastSeq %d after conflict, was %d", n, top)
	}
	if n := len(AllAudit(t, s)); n != audits {
		t.Errorf("%d audit entries after conflict, was %d", n, audits)
	}
	if ok, err := s.BlobReferenced(ctx, other.Parts[0].BlobKey); err != nil || ok {
		t.Errorf("BlobReferenced(part of the refused commit) = %v, %v", ok, err)
	}
	if ds, err := s.Inbox(ctx, "kommune-0147", 0, 10); err != nil || len(ds) != 0 {
		t.Errorf("Inbox of the refused commit's recipient = %v, %v", seqs(ds), err)
	}
}

// testCommitAtomic: a commit that fails half-way (a blob key that belongs
// to another bundle, a recipient twice) leaves nothing behind.
func testCommitAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := NewBundle(uuid.NewString(), 1)
	commit(t, s, b, to("kommune-0147", ""))
	top, audits := lastSeq(t, s), len(AllAudit(t, s))

	reuse := NewBundle(uuid.NewString(), 2)
	reuse.Parts[1].BlobKey = b.Parts[0].BlobKey
	_, _, err := s.CommitBundle(ctx, reuse, []store.Delivery{to("kommune-0147", "")}, Entry("push", reuse.CPR))
	wantKind(t, "CommitBundle reusing a blob key", err, errs.Conflict, "store.conflict")

	twice := NewBundle(uuid.NewString(), 1)
	_, _, err = s.CommitBundle(ctx, twice, []store.Delivery{to("kommune-0147", ""), to("kommune-0147", "")}, Entry("push", twice.CPR))
	if err == nil {
		t.Fatalf("CommitBundle with one delivery twice succeeded")
	}

	for _, id := range []string{reuse.ID, twice.ID} {
		_, err := s.Bundle(ctx, id)
		wantKind(t, "Bundle of a failed commit", err, errs.NotFound, "store.not_found")
	}
	if ok, err := s.BlobReferenced(ctx, reuse.Parts[0].BlobKey); err != nil || ok {
		t.Errorf("BlobReferenced(part of a failed commit) = %v, %v", ok, err)
	}
	if n := lastSeq(t, s); n != top {
		t.Errorf("LastSeq %d after failed commits, was %d", n, top)
	}
	if n := len(AllAudit(t, s)); n != audits {
		t.Errorf("%d audit entries after failed commits, was %d", n, audits)
	}
	// The store still works, and the failed bundle can be committed properly.
	reuse.Parts[1].BlobKey = "blob/" + uuid.NewString()
	commit(t, s, reuse, to("kommune-0147", ""))
	CheckChain(t, AllAudit(t, s))
}

func testCommitInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, _, err := s.CommitBundle(ctx, &store.Bundle{}, nil, Entry("push", ""))
	wantKind(t, "CommitBundle without ID", err, errs.Invalid, "store.invalid")
	b := NewBundle(uuid.NewString(), 0)
	_, _, err = s.CommitBundle(ctx, b, []store.Delivery{{BundleID: "another", Recipient: "x"}}, Entry("push", ""))
	wantKind(t, "CommitBundle with another bundle's delivery", err, errs.Invalid, "store.invalid")
	_, _, err = s.CommitBundle(ctx, b, []store.Delivery{{}}, Entry("push", ""))
	wantKind(t, "CommitBundle with a delivery to nobody", err, errs.Invalid, "store.invalid")
	if _, err := s.Bundle(ctx, b.ID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("Bundle after invalid commits: %v", err)
	}
}

// testText: text is valid UTF-8 without NUL in both stores.
func testText(t *testing.T, s store.Store) {
	ctx := t.Context()
	const bad, clean = "a\x00b\xffc", "a\uFFFDb\uFFFDc"
	for name, mod := range map[string]func(b *store.Bundle, ds []store.Delivery){
		"case ID":   func(b *store.Bundle, ds []store.Delivery) { b.CaseID = bad },
		"CPR":       func(b *store.Bundle, ds []store.Delivery) { b.CPR = "\xff" },
		"part ID":   func(b *store.Bundle, ds []store.Delivery) { b.Parts[0].ID = "\x00" },
		"recipient": func(b *store.Bundle, ds []store.Delivery) { ds[0].Recipient = bad },
	} {
		b := NewBundle(uuid.NewString(), 1)
		ds := []store.Delivery{to("kommune-0147", "")}
		mod(b, ds)
		_, _, err := s.CommitBundle(ctx, b, ds, Entry("push", ""))
		wantKind(t, "CommitBundle with a bad "+name, err, errs.Invalid, "store.invalid")
	}

	b := NewBundle(uuid.NewString(), 1)
	commit(t, s, b, to("kommune-0147", ""))
	e := Entry("denied", "")
	e.Detail, e.Actor = bad, bad
	must(t, s.Audit(ctx, e))
	must(t, s.Ack(ctx, b.ID, "kommune-0147", bad, time.Now(), Entry("ack", "")))
	entries := AllAudit(t, s)
	CheckChain(t, entries)
	if got := entries[1]; got.Detail != clean || got.Actor != clean {
		t.Errorf("audit text stored as %q, %q; want %q", got.Detail, got.Actor, clean)
	}
	ds, err := s.Deliveries(ctx, b.ID)
	must(t, err)
	if ds[0].AckedBy != clean {
		t.Errorf("AckedBy = %q, want %q", ds[0].AckedBy, clean)
	}

	_, err = s.Bundle(ctx, bad)
	wantKind(t, "Bundle(bad text)", err, errs.NotFound, "store.not_found")
	err = s.Ack(ctx, bad, "kommune-0147", "x", time.Now(), Entry("ack", ""))
	wantKind(t, "Ack(bad bundle ID)", err, errs.NotFound, "store.not_found")
	err = s.Ack(ctx, b.ID, bad, "x", time.Now(), Entry("ack", ""))
	wantKind(t, "Ack(bad recipient)", err, errs.NotFound, "store.not_found")
	if ds, err := s.Deliveries(ctx, bad); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries(bad text) = %v, %v", ds, err)
	}
	if ds, err := s.Inbox(ctx, bad, 0, 10); err != nil || len(ds) != 0 {
		t.Errorf("Inbox(bad text) = %v, %v", ds, err)
	}
	if es, err := s.AuditByCPR(ctx, bad); err != nil || len(es) != 0 {
		t.Errorf("AuditByCPR(bad text) = %v, %v", es, err)
	}
	if ok, err := s.BlobReferenced(ctx, bad); err != nil || ok {
		t.Errorf("BlobReferenced(bad text) = %v, %v", ok, err)
	}
	if n := len(AllAudit(t, s)); n != len(entries) {
		t.Errorf("refused calls wrote audit entries")
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Bundle(ctx, uuid.NewString())
	wantKind(t, "Bundle(unknown)", err, errs.NotFound, "store.not_found")
	if ds, err := s.Deliveries(ctx, uuid.NewString()); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries(unknown) = %v, %v", ds, err)
	}
	err = s.Ack(ctx, uuid.NewString(), "kommune-0147", "CVR:1-UID:1", time.Now(), Entry("ack", ""))
	wantKind(t, "Ack(unknown bundle)", err, errs.NotFound, "store.not_found")
	b := NewBundle(uuid.NewString(), 1)
	commit(t, s, b, to("kommune-0147", ""))
	audits := len(AllAudit(t, s))
	err = s.Ack(ctx, b.ID, "kommune-0101", "CVR:1-UID:1", time.Now(), Entry("ack", ""))
	wantKind(t, "Ack(not a recipient)", err, errs.NotFound, "store.not_found")
	if n := len(AllAudit(t, s)); n != audits {
		t.Errorf("a refused Ack wrote audit entries: %d, was %d", n, audits)
	}
	ds, err := s.Deliveries(ctx, b.ID)
	must(t, err)
	if ds[0].AckedAt != nil {
		t.Errorf("a refused Ack acknowledged the delivery")
	}
}

func testInbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	const a, r, c = "kommune-0147", "region-hovedstaden", "kommune-0101"
	b1, b2, b3, b4, b5 := NewBundle("b1-"+uuid.NewString(), 1), NewBundle("b2-"+uuid.NewString(), 1),
		NewBundle("b3-"+uuid.NewString(), 1), NewBundle("b4-"+uuid.NewString(), 1), NewBundle("b5-"+uuid.NewString(), 1)
	b2.Purpose = "henvisning"
	commit(t, s, b1, to(a, ""))
	commit(t, s, b2, to(r, "sundhedskoordinator"), to(r, "klinisk-funktion"))
	commit(t, s, b3, to(a, ""), to(r, "sundhedskoordinator"))
	commit(t, s, b4, to(c, ""))
	commit(t, s, b5, to(a, ""))

	inbox := func(who string, after int64, limit int) []store.Delivery {
		t.Helper()
		ds, err := s.Inbox(ctx, who, after, limit)
		must(t, err)
		for i, d := range ds {
			if d.Recipient != who {
				t.Fatalf("Inbox(%s) holds a delivery to %s", who, d.Recipient)
			}
			if d.Seq <= after || (i > 0 && d.Seq <= ds[i-1].Seq) {
				t.Fatalf("Inbox(%s, %d) seqs %v not ascending above the cursor", who, after, seqs(ds))
			}
		}
		return ds
	}
	ids := func(ds []store.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.BundleID+"/"+d.Function)
		}
		return out
	}

	all := inbox(a, 0, 100)
	if got, want := ids(all), []string{b1.ID + "/", b3.ID + "/", b5.ID + "/"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Inbox(%s) = %v, want %v", a, got, want)
	}
	d := all[1]
	if d.CaseID != b3.CaseID || d.Purpose != b3.Purpose || d.From != b3.SenderOrg ||
		!d.Received.Equal(norm(b3.Received)) || d.Received.Location() != time.UTC || d.AckedAt != nil {
		t.Errorf("Inbox delivery %+v lacks the bundle's fields", d)
	}
	if got, want := ids(inbox(a, all[0].Seq, 100)), []string{b3.ID + "/", b5.ID + "/"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Inbox after the first = %v, want %v", got, want)
	}
	if got := inbox(a, 0, 2); len(got) != 2 || got[1].Seq != all[1].Seq {
		t.Errorf("Inbox limit 2 = %v", seqs(got))
	}
	var paged []store.Delivery
	for after := int64(0); ; {
		page := inbox(a, after, 1)
		if len(page) == 0 {
			break
		}
		if len(page) != 1 {
			t.Fatalf("Inbox limit 1 returned %d", len(page))
		}
		paged = append(paged, page...)
		after = page[0].Seq
	}
	if !reflect.DeepEqual(seqs(paged), seqs(all)) {
		t.Errorf("paging by one: %v, want %v", seqs(paged), seqs(all))
	}
	if got, want := ids(inbox(r, 0, 100)), []string{b2.ID + "/sundhedskoordinator", b2.ID + "/klinisk-funktion", b3.ID + "/sundhedskoordinator"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Inbox(%s) = %v, want %v", r, got, want)
	}
	if got := inbox(c, 0, 100); len(got) != 1 || got[0].BundleID != b4.ID {
		t.Errorf("Inbox(%s) = %v", c, ids(got))
	}
	if got := inbox("nobody", 0, 100); len(got) != 0 {
		t.Errorf("Inbox(nobody) = %v", ids(got))
	}
	top := lastSeq(t, s)
	if top != all[2].Seq {
		t.Errorf("LastSeq = %d, want the last delivery's %d", top, all[2].Seq)
	}
	if got := inbox(a, top, 100); len(got) != 0 {
		t.Errorf("Inbox after LastSeq = %v", ids(got))
	}
	// Acknowledged deliveries stay in the inbox, marked.
	must(t, s.Ack(ctx, b3.ID, a, "CVR:1-UID:1", time.Now(), Entry("ack", "")))
	if got := inbox(a, 0, 100); got[1].AckedAt == nil || got[0].AckedAt != nil || got[2].AckedAt != nil {
		t.Errorf("Inbox after Ack: %+v", got)
	}
}

func testAck(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := NewBundle(uuid.NewString(), 1)
	commit(t, s, b, to("region-hovedstaden", "sundhedskoordinator"), to("kommune-0147", ""))
	cet := time.FixedZone("CET", 3600)
	t1 := time.Date(2025, 5, 6, 7, 8, 9, 123456789, cet)
	a1 := Entry("ack", b.CPR)
	a1.BundleID = b.ID
	must(t, s.Ack(ctx, b.ID, "region-hovedstaden", "CVR:1-UID:first", t1, a1))
	check := func(when string) {
		t.Helper()
		ds, err := s.Deliveries(ctx, b.ID)
		must(t, err)
		if ds[0].AckedAt == nil || !ds[0].AckedAt.Equal(norm(t1)) || ds[0].AckedAt.Location() != time.UTC ||
			ds[0].AckedBy != "CVR:1-UID:first" {
			t.Errorf("%s: acked %v by %q, want %v by the first", when, ds[0].AckedAt, ds[0].AckedBy, norm(t1))
		}
		if ds[1].AckedAt != nil || ds[1].AckedBy != "" {
			t.Errorf("%s: the other recipient's delivery is acknowledged", when)
		}
	}
	check("after the first Ack")
	must(t, s.Ack(ctx, b.ID, "region-hovedstaden", "CVR:1-UID:second", t1.Add(time.Hour), Entry("ack", "")))
	check("after the second Ack")

	entries := AllAudit(t, s)
	if len(entries) != 3 {
		t.Fatalf("%d audit entries, want push and two acks", len(entries))
	}
	for _, e := range entries[1:] {
		if e.Action != "ack" || e.BundleID != b.ID || e.CPR != b.CPR {
			t.Errorf("ack audit entry %+v: want action ack, the bundle and its CPR", e)
		}
	}
	CheckChain(t, entries)
}

func testAckAllFunctions(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := NewBundle(uuid.NewString(), 1)
	commit(t, s, b, to("region-hovedstaden", "sundhedskoordinator"), to("region-hovedstaden", "klinisk-funktion"))
	must(t, s.Ack(ctx, b.ID, "region-hovedstaden", "CVR:1-UID:1", time.Now(), Entry("ack", "")))
	ds, err := s.Deliveries(ctx, b.ID)
	must(t, err)
	for _, d := range ds {
		if d.AckedAt == nil {
			t.Errorf("delivery %d/%s not acknowledged", d.Seq, d.Function)
		}
	}
}

func testAuditChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	cet := time.FixedZone("CET", 3600)
	in := []store.AuditEntry{
		{At: time.Date(2025, 1, 2, 3, 4, 5, 678901234, cet), Actor: "CVR:1-UID:æøå", Action: "inbox", Outcome: "ok"},
		{At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Action: "denied", Outcome: "auth.forbidden",
			Detail: "line one\nline \"two\"\t\x01 end \u2028 <&>"},
		{At: time.Date(1999, 12, 31, 23, 59, 59, 999999999, cet), Action: "push-refused", Outcome: "xsd.invalid", CPR: "0101010101"},
	}
	for _, e := range in {
		must(t, s.Audit(ctx, e))
	}
	b := NewBundle(uuid.NewString(), 1)
	commit(t, s, b, to("kommune-0147", ""))
	must(t, s.Ack(ctx, b.ID, "kommune-0147", "CVR:1-UID:1", time.Now(), Entry("ack", "")))
	before := time.Now()
	must(t, s.Audit(ctx, store.AuditEntry{Action: "read-part"}))
	after := time.Now()

	entries := AllAudit(t, s)
	if len(entries) != 6 {
		t.Fatalf("%d audit entries, want 6", len(entries))
	}
	CheckChain(t, entries)
	for i, e := range in {
		got := entries[i]
		e.Seq, e.At, e.PrevHash, e.Hash = int64(i+1), norm(e.At), got.PrevHash, got.Hash
		if got != e || got.At.Location() != time.UTC {
			t.Errorf("audit entry %d\n got %+v\nwant %+v", i+1, got, e)
		}
	}
	if e := entries[5]; e.At.Before(before.Truncate(time.Microsecond)) || e.At.After(after) {
		t.Errorf("an entry without time got At %v, want now", e.At)
	}
	page, err := s.AuditEntries(ctx, 2, 2)
	must(t, err)
	if len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Fatalf("AuditEntries(2, 2) seqs %v", page)
	}
	if bad := store.VerifyChain(entries[1].Hash, page); bad != 0 {
		t.Errorf("a page of the chain does not verify at %d", bad)
	}
	if page, err := s.AuditEntries(ctx, 6, 10); err != nil || len(page) != 0 {
		t.Errorf("AuditEntries after the last = %v, %v", page, err)
	}
}

func testAuditByCPR(t *testing.T, s store.Store) {
	ctx := t.Context()
	const cprA, cprB = "0101011234", "0202025678"
	must(t, s.Audit(ctx, Entry("inbox", "")))
	must(t, s.Audit(ctx, Entry("read-manifest", cprA)))
	must(t, s.Audit(ctx, Entry("read-manifest", cprB)))
	b := NewBundle(uuid.NewString(), 1)
	b.CPR = cprA
	_, _, err := s.CommitBundle(ctx, b, []store.Delivery{to("kommune-0147", "")}, Entry("push", "")) // CPR from the bundle
	must(t, err)
	must(t, s.Ack(ctx, b.ID, "kommune-0147", "CVR:1-UID:1", time.Now(), Entry("ack", ""))) // CPR from the bundle
	must(t, s.Audit(ctx, Entry("denied", cprB)))

	check := func(cpr string, want ...int64) {
		t.Helper()
		es, err := s.AuditByCPR(ctx, cpr)
		must(t, err)
		got := []int64{}
		for _, e := range es {
			got = append(got, e.Seq)
			if e.CPR != cpr {
				t.Errorf("AuditByCPR(%s) returned an entry about %s", cpr, e.CPR)
			}
			if e.Hash != store.HashEntry(e) {
				t.Errorf("AuditByCPR(%s): entry %d does not hash to its Hash", cpr, e.Seq)
			}
		}
		if want == nil {
			want = []int64{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("AuditByCPR(%s) = %v, want %v", cpr, got, want)
		}
	}
	check(cprA, 2, 4, 5)
	check(cprB, 3, 6)
	check("0303039999")
	check("")
}

func testBlobReferenced(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := NewBundle(uuid.NewString(), 3)
	commit(t, s, b, to("kommune-0147", ""))
	for _, p := range b.Parts {
		if ok, err := s.BlobReferenced(ctx, p.BlobKey); err != nil || !ok {
			t.Errorf("BlobReferenced(%s) = %v, %v", p.BlobKey, ok, err)
		}
	}
	for _, key := range []string{"blob/" + uuid.NewString(), "", b.Parts[0].BlobKey + "x"} {
		if ok, err := s.BlobReferenced(ctx, key); err != nil || ok {
			t.Errorf("BlobReferenced(%q) = %v, %v", key, ok, err)
		}
	}
}

func testContextCanceled(t *testing.T, s store.Store) {
	b := NewBundle(uuid.NewString(), 1)
	commit(t, s, b, to("kommune-0147", ""))
	top, audits := lastSeq(t, s), len(AllAudit(t, s))

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		ctx := c.ctx
		nb := NewBundle(uuid.NewString(), 1)
		calls := map[string]error{}
		_, _, calls["CommitBundle"] = s.CommitBundle(ctx, nb, []store.Delivery{to("kommune-0147", "")}, Entry("push", nb.CPR))
		_, calls["Bundle"] = s.Bundle(ctx, b.ID)
		_, calls["Deliveries"] = s.Deliveries(ctx, b.ID)
		_, calls["Inbox"] = s.Inbox(ctx, "kommune-0147", 0, 10)
		_, calls["LastSeq"] = s.LastSeq(ctx)
		calls["Ack"] = s.Ack(ctx, b.ID, "kommune-0147", "CVR:1-UID:1", time.Now(), Entry("ack", ""))
		calls["Audit"] = s.Audit(ctx, Entry("inbox", ""))
		_, calls["AuditEntries"] = s.AuditEntries(ctx, 0, 10)
		_, calls["AuditByCPR"] = s.AuditByCPR(ctx, b.CPR)
		_, calls["BlobReferenced"] = s.BlobReferenced(ctx, b.Parts[0].BlobKey)
		calls["Ping"] = s.Ping(ctx)
		for name, err := range calls {
			if !errors.Is(err, c.want) || errs.KindOf(err) != errs.Unavailable || errs.CodeOf(err) != "store.unavailable" {
				t.Errorf("%s with a done context (%v): %v (kind %v), want Unavailable wrapping %v", name, c.want, err, errs.KindOf(err), c.want)
			}
		}
		if _, err := s.Bundle(t.Context(), nb.ID); errs.KindOf(err) != errs.NotFound {
			t.Errorf("CommitBundle with a done context stored the bundle: %v", err)
		}
	}
	if n := lastSeq(t, s); n != top {
		t.Errorf("LastSeq %d after canceled calls, was %d", n, top)
	}
	if n := len(AllAudit(t, s)); n != audits {
		t.Errorf("%d audit entries after canceled calls, was %d", n, audits)
	}
	ds, err := s.Deliveries(t.Context(), b.ID)
	must(t, err)
	if ds[0].AckedAt != nil {
		t.Errorf("a canceled Ack acknowledged the delivery")
	}
}

func testPingClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.Ping(ctx))
	must(t, s.Close())
	b := NewBundle(uuid.NewString(), 1)
	calls := map[string]error{}
	calls["Ping"] = s.Ping(ctx)
	_, _, calls["CommitBundle"] = s.CommitBundle(ctx, b, nil, Entry("push", ""))
	_, calls["Bundle"] = s.Bundle(ctx, b.ID)
	_, calls["Inbox"] = s.Inbox(ctx, "kommune-0147", 0, 10)
	calls["Audit"] = s.Audit(ctx, Entry("inbox", ""))
	for name, err := range calls {
		if errs.KindOf(err) != errs.Unavailable || errs.CodeOf(err) != "store.unavailable" {
			t.Errorf("%s after Close: %v, want Unavailable", name, err)
		}
	}
}
