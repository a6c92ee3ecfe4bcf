package intake_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/bundle/example"
	"github.com/rehabgw/rehabgw/gateway/config"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/intake"
	"github.com/rehabgw/rehabgw/gateway/store"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

// memBlobs is an in-memory blob store that can be told to fail.
type memBlobs struct {
	mu      sync.Mutex
	objs    map[string][]byte
	failPut error // returned by Put when set
}

func newMem() *memBlobs { return &memBlobs{objs: map[string][]byte{}} }

func (m *memBlobs) Put(_ context.Context, key string, r io.Reader, size int64) error {
	b, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		return m.failPut
	}
	if int64(len(b)) < size {
		return io.ErrUnexpectedEOF
	}
	m.objs[key] = b
	return nil
}
func (m *memBlobs) Get(_ context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, errs.E(errs.NotFound, "blob.not_found", "no object")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
func (m *memBlobs) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}
func (m *memBlobs) List(_ context.Context, prefix string, _ time.Time, each func(string) error) error {
	m.mu.Lock()
	var keys []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := each(k); err != nil {
			return err
		}
	}
	return nil
}
func (m *memBlobs) Ping(context.Context) error { return nil }
func (m *memBlobs) count() int                 { m.mu.Lock(); defer m.mu.Unlock(); return len(m.objs) }

func pki(name string) string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..", "testdata", "pki", name)
}

func signer(t *testing.T, who string) *xmlsig.Signer {
	key, chain, err := certs.LoadKeyPair(pki(who+".crt"), pki(who+".key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmlsig.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fixture struct {
	p     *intake.Pipeline
	store store.Store
	blobs *memBlobs
}

func newFixture(t *testing.T) *fixture {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := func() time.Time { return time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) }
	v, err := bundle.NewValidator(bundle.Config{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	roots, _, err := certs.LoadPool(pki("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	gw := signer(t, "gateway")
	id, _ := certs.IdentityOf(gw.Certificate())
	mb := newMem()
	return &fixture{store: st, blobs: mb, p: &intake.Pipeline{
		Validator: v, Trust: bundle.Trust{Roots: roots}, Store: st, Blobs: mb, Signer: gw, Gateway: id.String(), Now: now,
	}}
}

// sliceSource yields parts from memory.
type sliceSource struct {
	ids   []string
	datas [][]byte
	i     int
}

func (s *sliceSource) Next() (string, io.Reader, error) {
	if s.i >= len(s.ids) {
		return "", nil, io.EOF
	}
	s.i++
	return s.ids[s.i-1], bytes.NewReader(s.datas[s.i-1]), nil
}

// example returns a signed forberedelse bundle as manifest bytes and parts.
func exampleBundle(t *testing.T, id string) ([]byte, *sliceSource) {
	dir := t.TempDir()
	m, err := example.Write(dir, example.Options{Purpose: bundle.Forberedelse, BundleID: id}, signer(t, "kommune-101").Sign)
	if err != nil {
		t.Fatal(err)
	}
	man, _ := os.ReadFile(filepath.Join(dir, bundle.ManifestFile))
	src := &sliceSource{}
	for _, p := range m.Parts {
		b, _ := os.ReadFile(filepath.Join(dir, p.ID))
		src.ids = append(src.ids, p.ID)
		src.datas = append(src.datas, b)
	}
	return man, src
}

var kbh = intake.Caller{Identity: "CVR:64942212-UID:test", Org: "kommune-101"}

const id1 = "11111111-2222-4333-8444-555555555555"

func TestPush(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(f *fixture, src *sliceSource)
		caller intake.Caller
		want   string // "" = accepted
		kind   errs.Kind
	}{
		{name: "ok/accepted"},
		{name: "ok/parts-in-any-order", mutate: func(_ *fixture, s *sliceSource) {
			s.ids[0], s.ids[2] = s.ids[2], s.ids[0]
			s.datas[0], s.datas[2] = s.datas[2], s.datas[0]
		}},
		{name: "fail/part-missing-from-request", mutate: func(_ *fixture, s *sliceSource) { s.ids, s.datas = s.ids[:2], s.datas[:2] }, want: "part.missing", kind: errs.Invalid},
		{name: "fail/part-not-in-manifest", mutate: func(_ *fixture, s *sliceSource) {
			s.ids = append(s.ids, "extra.pdf")
			s.datas = append(s.datas, []byte("%PDF-1.4"))
		}, want: "part.unexpected", kind: errs.Invalid},
		{name: "fail/part-twice", mutate: func(_ *fixture, s *sliceSource) {
			s.ids = append(s.ids[:1], s.ids...)
			s.datas = append(s.datas[:1], s.datas...)
		}, want: "part.repeated", kind: errs.Invalid},
		{name: "fail/part-longer-than-declared", mutate: func(_ *fixture, s *sliceSource) { s.datas[2] = append(s.datas[2], 'x') }, want: "part.size_mismatch", kind: errs.Invalid},
		{name: "fail/part-shorter-than-declared", mutate: func(_ *fixture, s *sliceSource) { s.datas[2] = s.datas[2][:10] }, want: "part.size_mismatch", kind: errs.Invalid},
		{name: "fail/part-changed", mutate: func(_ *fixture, s *sliceSource) {
			d := bytes.Clone(s.datas[2])
			d[len(d)/2] ^= 1
			s.datas[2] = d
		}, want: "part.digest_mismatch", kind: errs.Invalid},
		{name: "fail/s3-unavailable", mutate: func(f *fixture, _ *sliceSource) {
			f.blobs.failPut = errs.E(errs.Unavailable, "blob.unavailable", "down")
		}, want: "blob.unavailable", kind: errs.Unavailable},
		{name: "fail/other-organisation-pushes", caller: intake.Caller{Identity: "CVR:55133018-UID:x", Org: "kommune-751"}, want: "auth.sender_mismatch", kind: errs.Forbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			man, src := exampleBundle(t, id1)
			if tc.mutate != nil {
				tc.mutate(f, src)
			}
			c := kbh
			if tc.caller.Org != "" {
				c = tc.caller
			}
			res, err := f.p.Push(context.Background(), c, man, src)
			ctx := context.Background()
			if tc.want == "" {
				if err != nil || !res.Created || !bytes.Contains(res.Receipt, []byte("<Acceptance")) {
					t.Fatalf("want accepted, got %v", err)
				}
				b, err := f.store.Bundle(ctx, id1)
				if err != nil || len(b.Parts) != 3 || f.blobs.count() != 3 {
					t.Fatalf("stored %v parts, %d objects, %v", b, f.blobs.count(), err)
				}
				return
			}
			if errs.CodeOf(err) != tc.want || errs.KindOf(err) != tc.kind {
				t.Fatalf("want %s (%s), got %v", tc.want, tc.kind, err)
			}
			// Nothing left behind: no bundle, no delivery, no object; the
			// refusal is audited.
			if _, err := f.store.Bundle(ctx, id1); errs.KindOf(err) != errs.NotFound {
				t.Fatalf("a refused bundle is stored: %v", err)
			}
			if ds, _ := f.store.Inbox(ctx, "region-1084", 0, 10); len(ds) != 0 {
				t.Fatal("a refused bundle was delivered")
			}
			if n := f.blobs.count(); n != 0 {
				t.Fatalf("%d objects left behind", n)
			}
			es, _ := f.store.AuditEntries(ctx, 0, 10)
			if len(es) != 1 || es[0].Action != "push-refused" || es[0].Outcome != tc.want {
				t.Fatalf("refusal not audited: %+v", es)
			}
		})
	}
}

func TestPushIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	man, src := exampleBundle(t, id1)
	first, err := f.p.Push(ctx, kbh, man, src)
	if err != nil || !first.Created {
		t.Fatal(err)
	}
	src.i = 0
	again, err := f.p.Push(ctx, kbh, man, src)
	if err != nil || again.Created || !bytes.Equal(again.Receipt, first.Receipt) {
		t.Fatalf("identical resend: %v created=%v", err, again != nil && again.Created)
	}
	if ds, _ := f.store.Inbox(ctx, "region-1084", 0, 10); len(ds) != 1 {
		t.Fatalf("%d deliveries after a resend", len(ds))
	}
	if f.blobs.count() != 3 {
		t.Fatalf("%d objects after a resend", f.blobs.count())
	}
	// Same ID, other content (re-signed): conflict, nothing changes.
	other, src2 := exampleBundle(t, id1)
	other = bytes.Replace(other, []byte("<Unit>"), []byte("<Unit>x"), 1)
	other, err = signer(t, "kommune-101").Sign(stripSig(t, other))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.Push(ctx, kbh, other, src2); errs.CodeOf(err) != "bundle.conflict" {
		t.Fatalf("want bundle.conflict, got %v", err)
	}
	if f.blobs.count() != 3 {
		t.Fatalf("%d objects after a conflict", f.blobs.count())
	}
}

func TestConcurrentIdenticalPushes(t *testing.T) {
	f := newFixture(t)
	man, _ := exampleBundle(t, id1)
	var wg sync.WaitGroup
	created := make(chan bool, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, src := exampleBundle(t, id1)
			res, err := f.p.Push(context.Background(), kbh, man, src)
			if err != nil {
				t.Error(err)
				return
			}
			created <- res.Created
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d pushes created the bundle, want exactly 1", n)
	}
	if c := f.blobs.count(); c != 3 {
		t.Fatalf("%d objects: the losers' uploads were not cleaned up", c)
	}
}

func TestJanitor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	man, src := exampleBundle(t, id1)
	if _, err := f.p.Push(ctx, kbh, man, src); err != nil {
		t.Fatal(err)
	}
	// An object a crashed push left behind.
	f.blobs.Put(ctx, intake.BlobPrefix+"deadbeef/000", bytes.NewReader([]byte("x")), 1)
	n, err := intake.Janitor(ctx, f.store, f.blobs, time.Hour, time.Now())
	if err != nil || n != 1 || f.blobs.count() != 3 {
		t.Fatalf("janitor deleted %d (%v), %d objects remain", n, err, f.blobs.count())
	}
}

func stripSig(t *testing.T, doc []byte) []byte {
	i := bytes.Index(doc, []byte("<ds:Signature"))
	j := bytes.Index(doc, []byte("</ds:Signature>"))
	if i < 0 || j < 0 {
		t.Fatal("no signature")
	}
	return append(append([]byte{}, doc[:i]...), doc[j+len("</ds:Signature>"):]...)
}

// lostReply commits for real, then reports the connection as lost; with
// down set, every later read fails as well.
type lostReply struct {
	store.Store
	down bool
}

func (l *lostReply) CommitBundle(ctx context.Context, b *store.Bundle, d []store.Delivery, a store.AuditEntry) (*store.Bundle, bool, error) {
	if _, _, err := l.Store.CommitBundle(ctx, b, d, a); err != nil {
		return nil, false, err
	}
	return nil, false, errs.E(errs.Unavailable, "store.unavailable", "connection lost during COMMIT")
}

func (l *lostReply) Bundle(ctx context.Context, id string) (*store.Bundle, error) {
	if l.down {
		return nil, errs.E(errs.Unavailable, "store.unavailable", "still down")
	}
	return l.Store.Bundle(ctx, id)
}

func TestCommitReplyLost(t *testing.T) {
	t.Run("ok/committed-despite-the-error", func(t *testing.T) {
		f := newFixture(t)
		f.p.Store = &lostReply{Store: f.store}
		man, src := exampleBundle(t, id1)
		res, err := f.p.Push(context.Background(), kbh, man, src)
		if err != nil || !res.Created {
			t.Fatalf("want the push reported as accepted, got %v", err)
		}
		if f.blobs.count() != 3 {
			t.Fatalf("%d objects: the committed bundle's parts were deleted", f.blobs.count())
		}
	})
	t.Run("fail/outcome-unknowable-keeps-objects", func(t *testing.T) {
		f := newFixture(t)
		ls := &lostReply{Store: f.store}
		f.p.Store = ls
		man, src := exampleBundle(t, id1)
		// The first read (the idempotency check) must work; later ones fail.
		f.p.Store = &downAfterFirstRead{lostReply: ls}
		_, err := f.p.Push(context.Background(), kbh, man, src)
		if errs.KindOf(err) != errs.Unavailable {
			t.Fatalf("want unavailable, got %v", err)
		}
		if f.blobs.count() != 3 {
			t.Fatalf("%d objects: parts deleted although the bundle may be committed", f.blobs.count())
		}
		// The bundle was in fact committed: a retry answers with the receipt
		// and every part is there.
		ls.down = false
		f.p.Store = f.store
		_, src2 := exampleBundle(t, id1)
		res, err := f.p.Push(context.Background(), kbh, man, src2)
		if err != nil || res.Created {
			t.Fatalf("retry: %v", err)
		}
	})
}

// downAfterFirstRead lets the first Bundle call through and fails the rest.
type downAfterFirstRead struct {
	*lostReply
	reads int
}

func (d *downAfterFirstRead) Bundle(ctx context.Context, id string) (*store.Bundle, error) {
	d.reads++
	if d.reads > 1 {
		return nil, errs.E(errs.Unavailable, "store.unavailable", "still down")
	}
	return d.lostReply.Store.Bundle(ctx, id)
}

// slowBlobs never finishes a Put before its context ends.
type slowBlobs struct{ *memBlobs }

func (s slowBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	<-ctx.Done()
	return errs.Wrap(errs.Unavailable, "blob.unavailable", ctx.Err(), "timed out")
}

func TestPushIsBounded(t *testing.T) {
	f := newFixture(t)
	f.p.Blobs = slowBlobs{f.blobs}
	f.p.MaxDuration = 100 * time.Millisecond
	man, src := exampleBundle(t, id1)
	start := time.Now()
	_, err := f.p.Push(context.Background(), kbh, man, src)
	if errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("want unavailable after the push deadline, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the push deadline did not stop the push (%v)", d)
	}
	if _, err := f.store.Bundle(context.Background(), id1); errs.KindOf(err) != errs.NotFound {
		t.Fatal("a push past its deadline was committed")
	}
	if intake.MaxPushDuration*2 > config.JanitorGrace {
		t.Fatalf("MaxPushDuration %v is not well under the janitor's grace %v", intake.MaxPushDuration, config.JanitorGrace)
	}
}

func TestIdenticalResendIsAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	man, src := exampleBundle(t, id1)
	if _, err := f.p.Push(ctx, kbh, man, src); err != nil {
		t.Fatal(err)
	}
	src.i = 0
	if _, err := f.p.Push(ctx, kbh, man, src); err != nil {
		t.Fatal(err)
	}
	es, _ := f.store.AuditEntries(ctx, 0, 10)
	if len(es) != 2 || es[1].Action != "push-duplicate" || es[1].CPR == "" || es[1].BundleID != id1 {
		t.Fatalf("resend not audited with its citizen: %+v", es)
	}
}
