package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/config"
	"github.com/rehabgw/rehabgw/internal/e2e"
)

const bucket = "rehabgw-e2e"

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustPush pushes b and fails the test unless the answer has status want.
func mustPush(t *testing.T, gw *e2e.Proc, b *e2e.Bundle, want int) *e2e.PushResult {
	t.Helper()
	res, err := e2e.Push(ctxT(t, 2*time.Minute), gw.Client(e2e.Sender), b)
	if err != nil {
		t.Fatalf("push %s to %s: %v", b.ID, gw.Addr, err)
	}
	if res.Status != want {
		t.Fatalf("push %s to %s: %d %s, want %d\n%.500s", b.ID, gw.Addr, res.Status, res.Code, want, res.Body)
	}
	return res
}

// assertAbsent: the sender gets 404 for the bundle and the recipient's
// inbox does not list it.
func assertAbsent(t *testing.T, gw *e2e.Proc, id string) {
	t.Helper()
	status, body, err := e2e.GetBundle(ctxT(t, 30*time.Second), gw.Client(e2e.Sender), id)
	e2e.Must(t, err, "GET bundle %s", id)
	if status != 404 {
		t.Fatalf("GET bundle %s as its sender: %d, want 404 (nothing stored)\n%.300s", id, status, body)
	}
	if n := e2e.CountBundle(e2e.AllInbox(t, gw.Client(e2e.Recipient)), id); n != 0 {
		t.Fatalf("bundle %s is in the recipient's inbox %d times, want absent", id, n)
	}
}

// embeddedObjects lists the objects the embedded S3 server of cfg holds.
func embeddedObjects(t *testing.T, cfg *config.Config) []string {
	t.Helper()
	ents, err := os.ReadDir(e2e.EmbeddedBlobDir(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

func partsOf(bs ...*e2e.Bundle) int {
	n := 0
	for _, b := range bs {
		n += len(b.Parts)
	}
	return n
}

// retryUntil calls f every 200 ms until it returns nil or d has passed, and
// returns the time taken and the last error.
func retryUntil(d time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := f()
		if err == nil || time.Since(start) > d {
			return time.Since(start), err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReliabilityRestartKeepsInboxAndCursor: N bundles pushed, the inbox
// read halfway with a cursor and two deliveries acknowledged; after SIGTERM
// and a restart the inbox after the cursor lists exactly the rest, in
// order, the acknowledgements are kept, and new deliveries follow.
func TestReliabilityRestartKeepsInboxAndCursor(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			pki := e2e.NewPKI(t)
			cfg := e2e.Config(t, pki)
			if backend == "postgres" {
				e2e.UsePostgres(cfg, e2e.PGSchema(t))
			}
			gw := e2e.StartGatewayd(t, cfg)
			const n = 10
			var ids []string
			for i := range n {
				b := e2e.NewBundle(t, pki, 0, uint64(i))
				mustPush(t, gw, b, 201)
				ids = append(ids, b.ID)
			}
			region := gw.Client(e2e.Recipient)
			first, cursor, err := e2e.Inbox(ctxT(t, 30*time.Second), region, 0, 0, n/2)
			e2e.Must(t, err, "inbox")
			if got := bundleIDs(first); !slices.Equal(got, ids[:n/2]) {
				t.Fatalf("first page %v, want %v", got, ids[:n/2])
			}
			acked := map[string]time.Time{}
			for _, id := range ids[:2] {
				at, err := e2e.Ack(ctxT(t, 30*time.Second), region, id)
				e2e.Must(t, err, "ack %s", id)
				acked[id] = at
			}

			gw.Restart() // SIGTERM, then start again
			region = gw.Client(e2e.Recipient)

			rest, cursor2, err := e2e.Inbox(ctxT(t, 30*time.Second), region, cursor, 0, 100)
			e2e.Must(t, err, "inbox after the restart")
			if got := bundleIDs(rest); !slices.Equal(got, ids[n/2:]) {
				t.Fatalf("after the restart the inbox after cursor %d lists %v, want %v", cursor, got, ids[n/2:])
			}
			for i, d := range rest {
				if d.Seq <= cursor || (i > 0 && d.Seq <= rest[i-1].Seq) {
					t.Fatalf("seq %d out of order (cursor %d)", d.Seq, cursor)
				}
			}
			all := e2e.AllInbox(t, region)
			if got := bundleIDs(all); !slices.Equal(got, ids) {
				t.Fatalf("whole inbox after the restart %v, want %v", got, ids)
			}
			for _, d := range all {
				want, ok := acked[d.BundleID]
				switch {
				case ok && (d.AckedAt == nil || !d.AckedAt.Equal(want)):
					t.Errorf("ack of %s: %v after the restart, want %v", d.BundleID, d.AckedAt, want)
				case !ok && d.AckedAt != nil:
					t.Errorf("%s acknowledged at %v, but it never was", d.BundleID, d.AckedAt)
				}
			}
			// A second ack keeps the first time.
			at, err := e2e.Ack(ctxT(t, 30*time.Second), region, ids[0])
			e2e.Must(t, err, "ack again")
			if !at.Equal(acked[ids[0]]) {
				t.Errorf("second ack answered %v, want the first time %v", at, acked[ids[0]])
			}
			// New deliveries come after the cursor.
			b := e2e.NewBundle(t, pki, 0, 99)
			mustPush(t, gw, b, 201)
			next, _, err := e2e.Inbox(ctxT(t, 30*time.Second), region, cursor2, 0, 100)
			e2e.Must(t, err, "inbox")
			if got := bundleIDs(next); !slices.Equal(got, []string{b.ID}) {
				t.Fatalf("after cursor %d: %v, want only the new bundle %s", cursor2, got, b.ID)
			}
			gw.AuditVerify(t)
		})
	}
}

func bundleIDs(ds []e2e.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.BundleID
	}
	return out
}

// TestReliabilityS3Stopped: gatewayd on SQLite and a real MinIO. With MinIO
// stopped a push answers 503 (gwctl exit 3), /readyz 503, and nothing is
// stored; once MinIO is back on the same directory and port, the same
// gatewayd (no restart) is ready and accepts the push within seconds, and
// the bucket holds exactly the objects of the committed bundles.
func TestReliabilityS3Stopped(t *testing.T) {
	endpoint, access, secret, stopS3, restartS3 := e2e.StartMinIO(t)
	pki := e2e.NewPKI(t)
	cfg := e2e.Config(t, pki)
	e2e.UseS3(cfg, endpoint, access, bucket)
	gw := e2e.StartGatewayd(t, cfg, e2e.S3SecretEnv+"="+secret)

	b0 := e2e.NewBundle(t, pki, 1<<20, 1)
	mustPush(t, gw, b0, 201)

	stopS3()
	b1 := e2e.NewBundle(t, pki, 1<<20, 2)
	start := time.Now()
	r := e2e.Gwctl(t, append(append([]string{"push"}, gw.Flags(e2e.Sender)...), b1.Dir)...)
	if r.Code != 3 {
		t.Fatalf("gwctl push with S3 stopped: exit %d, want 3\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("gwctl push with S3 stopped: exit 3 after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
	start = time.Now()
	res, err := e2e.Push(ctxT(t, time.Minute), gw.Client(e2e.Sender), b1)
	e2e.Must(t, err, "push with S3 stopped")
	if res.Status != 503 || res.Code != "blob.unavailable" || res.RetryAfter == "" {
		t.Fatalf("push with S3 stopped: %d %s (Retry-After %q), want 503 blob.unavailable with Retry-After\n%.500s", res.Status, res.Code, res.RetryAfter, res.Body)
	}
	t.Logf("push with S3 stopped: 503 %s after %v", res.Code, time.Since(start).Round(time.Millisecond))
	if st := e2e.Ready(ctxT(t, 30*time.Second), gw.Client(e2e.Operator)); st != 503 {
		t.Fatalf("/readyz with S3 stopped: %d, want 503", st)
	}
	assertAbsent(t, gw, b1.ID)

	restartS3()
	restarted := time.Now()
	took, err := retryUntil(15*time.Second, func() error {
		if st := e2e.Ready(ctxT(t, 10*time.Second), gw.Client(e2e.Operator)); st != 200 {
			return errors.New("readyz " + itoa(st))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("/readyz after MinIO came back: %v after %v", err, took)
	}
	t.Logf("/readyz 200 %v after MinIO was ready again", took.Round(time.Millisecond))
	assertAbsent(t, gw, b1.ID) // the failed pushes left nothing
	took, err = retryUntil(15*time.Second, func() error {
		res, err := e2e.Push(ctxT(t, time.Minute), gw.Client(e2e.Sender), b1)
		if err != nil {
			return err
		}
		if res.Status != 201 {
			return errors.New("push " + itoa(res.Status) + " " + res.Code)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("push after MinIO came back: %v (after %v)", err, took)
	}
	t.Logf("push accepted (201) %v after MinIO was ready again, without restarting gatewayd", time.Since(restarted).Round(time.Millisecond))
	if ids := bundleIDs(e2e.AllInbox(t, gw.Client(e2e.Recipient))); !slices.Equal(ids, []string{b0.ID, b1.ID}) {
		t.Fatalf("inbox %v, want %v", ids, []string{b0.ID, b1.ID})
	}
	gw.FetchVerify(t, e2e.Recipient, b1.ID)

	// No orphaned object: the bucket holds the parts of the two committed
	// bundles and nothing else (the failed pushes could upload nothing).
	keys := e2e.S3Keys(t, endpoint, access, secret, bucket, "")
	if len(keys) != partsOf(b0, b1) {
		t.Fatalf("the bucket holds %d objects, want the %d parts of the committed bundles: %v", len(keys), partsOf(b0, b1), keys)
	}
	gw.AuditVerify(t)
}

func itoa(n int) string { return strconv.Itoa(n) }

func writeYAML(t *testing.T, path string, cfg *config.Config) {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReliabilityPostgresStopped: gatewayd on PostgreSQL through a TCP
// proxy and the embedded S3 server. With the proxy cut a push answers 503
// (gwctl exit 3) and /readyz 503; restored, the same gatewayd accepts the
// push, and nothing of the failed pushes was stored (no bundle, no
// delivery, no object).
func TestReliabilityPostgresStopped(t *testing.T) {
	dsn := e2e.PGSchema(t)
	proxy := e2e.NewProxy(t, e2e.PGAddr(t, dsn))
	pki := e2e.NewPKI(t)
	cfg := e2e.Config(t, pki)
	e2e.UsePostgres(cfg, e2e.DSNVia(dsn, proxy.Addr()))
	gw := e2e.StartGatewayd(t, cfg)

	b0 := e2e.NewBundle(t, pki, 1<<20, 1)
	mustPush(t, gw, b0, 201)

	proxy.Cut()
	b1 := e2e.NewBundle(t, pki, 1<<20, 2)
	start := time.Now()
	r := e2e.Gwctl(t, append(append([]string{"push"}, gw.Flags(e2e.Sender)...), b1.Dir)...)
	if r.Code != 3 {
		t.Fatalf("gwctl push with PostgreSQL cut: exit %d, want 3\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("gwctl push with PostgreSQL cut: exit 3 after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
	res, err := e2e.Push(ctxT(t, time.Minute), gw.Client(e2e.Sender), b1)
	e2e.Must(t, err, "push with PostgreSQL cut")
	if res.Status != 503 || res.Code != "store.unavailable" || res.RetryAfter == "" {
		t.Fatalf("push with PostgreSQL cut: %d %s (Retry-After %q), want 503 store.unavailable with Retry-After\n%.500s", res.Status, res.Code, res.RetryAfter, res.Body)
	}
	if st := e2e.Ready(ctxT(t, 30*time.Second), gw.Client(e2e.Operator)); st != 503 {
		t.Fatalf("/readyz with PostgreSQL cut: %d, want 503", st)
	}

	proxy.Restore()
	restored := time.Now()
	took, err := retryUntil(15*time.Second, func() error {
		if st := e2e.Ready(ctxT(t, 10*time.Second), gw.Client(e2e.Operator)); st != 200 {
			return errors.New("readyz " + itoa(st))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("/readyz after PostgreSQL came back: %v after %v", err, took)
	}
	t.Logf("/readyz 200 %v after the database came back", took.Round(time.Millisecond))
	assertAbsent(t, gw, b1.ID)
	if objs := embeddedObjects(t, cfg); len(objs) != partsOf(b0) {
		t.Fatalf("the blob store holds %d objects, want only the %d parts of the committed bundle: %v", len(objs), partsOf(b0), objs)
	}
	mustPush(t, gw, b1, 201)
	t.Logf("push accepted (201) %v after the database came back, without restarting gatewayd", time.Since(restored).Round(time.Millisecond))
	if ids := bundleIDs(e2e.AllInbox(t, gw.Client(e2e.Recipient))); !slices.Equal(ids, []string{b0.ID, b1.ID}) {
		t.Fatalf("inbox %v, want %v", ids, []string{b0.ID, b1.ID})
	}
	gw.FetchVerify(t, e2e.Recipient, b1.ID)
	if objs := embeddedObjects(t, cfg); len(objs) != partsOf(b0, b1) {
		t.Fatalf("the blob store holds %d objects, want the %d parts of the committed bundles", len(objs), partsOf(b0, b1))
	}
	gw.AuditVerify(t)
}

// TestReliabilityPostgresLostCommitReply: the database commits a push's
// transaction but the reply to COMMIT never reaches gatewayd (the
// connection breaks at that moment; the proxy forwards COMMIT and throws
// the answer away). gatewayd cannot know the outcome. Whatever it answers,
// the bundle must afterwards be absent or complete, and a retry must end
// with one complete, fetchable delivery.
func TestReliabilityPostgresLostCommitReply(t *testing.T) {
	dsn := e2e.PGSchema(t)
	proxy := e2e.NewProxy(t, e2e.PGAddr(t, dsn))
	pki := e2e.NewPKI(t)
	cfg := e2e.Config(t, pki)
	e2e.UsePostgres(cfg, e2e.DSNVia(dsn, proxy.Addr()))
	gw := e2e.StartGatewayd(t, cfg)

	b0 := e2e.NewBundle(t, pki, 0, 1)
	mustPush(t, gw, b0, 201)

	b1 := e2e.NewBundle(t, pki, 2<<20, 2)
	lost := proxy.LoseNextCommitReply()
	res, err := e2e.Push(ctxT(t, time.Minute), gw.Client(e2e.Sender), b1)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the push's COMMIT never passed the proxy")
	}
	answer := "no answer"
	if err == nil {
		answer = itoa(res.Status) + " " + res.Code
	}
	t.Logf("push whose COMMIT reply was lost: %s (err %v)", answer, err)

	status, acceptance, err := e2e.GetBundle(ctxT(t, 30*time.Second), gw.Client(e2e.Sender), b1.ID)
	e2e.Must(t, err, "GET bundle")
	n := e2e.CountBundle(e2e.AllInbox(t, gw.Client(e2e.Recipient)), b1.ID)
	present := false
	switch {
	case status == 404 && n == 0:
		t.Log("the bundle is absent")
	case status == 200 && n == 1:
		present = true
		t.Log("the bundle was committed")
		if res != nil && res.Status >= 500 {
			t.Logf("note: the gateway answered %s (\"nothing was stored\") for a bundle it had committed; the retry below must still be safe", answer)
		}
	default:
		t.Fatalf("half-stored: GET as sender %d, %d deliveries", status, n)
	}
	fetchable := true
	if present {
		fetchable = checkFetch(t, gw, b1, answer)
	}

	// Retry: 201 when absent, 200 with the stored receipt when present; the
	// recipient then fetches it complete, exactly one delivery.
	res2, err := e2e.Push(ctxT(t, time.Minute), gw.Client(e2e.Sender), b1)
	e2e.Must(t, err, "retry")
	switch {
	case !present && res2.Status != 201:
		t.Fatalf("retry of an absent bundle: %d %s, want 201", res2.Status, res2.Code)
	case present && (res2.Status != 200 || !bytes.Equal(res2.Body, acceptance)):
		t.Fatalf("retry of a committed bundle: %d %s, want 200 with the stored receipt", res2.Status, res2.Code)
	case present && !fetchable:
		// The retry cannot repair it: the idempotency check answers from
		// the stored row before any upload.
		out := filepath.Join(t.TempDir(), "refetched")
		if r := e2e.Gwctl(t, append([]string{"fetch", b1.ID, "--out", out}, gw.Flags(e2e.Recipient)...)...); r.Code == 0 {
			t.Log("the retry repaired the bundle")
		} else {
			t.Errorf("BUG (continued): the retry answered %d with the stored receipt, so the sender considers the bundle delivered, but it stays unfetchable (gwctl fetch exit %d)", res2.Status, r.Code)
		}
	}
	if ids := bundleIDs(e2e.AllInbox(t, gw.Client(e2e.Recipient))); !slices.Equal(ids, []string{b0.ID, b1.ID}) {
		t.Fatalf("inbox %v, want %v", ids, []string{b0.ID, b1.ID})
	}
	if !present {
		checkFetch(t, gw, b1, answer)
	}
	gw.AuditVerify(t)
}

// checkFetch: the recipient fetches the bundle and gwctl verifies both
// signatures and every digest; a failure is reported (t.Errorf) with what
// each part answers.
func checkFetch(t *testing.T, gw *e2e.Proc, b *e2e.Bundle, firstAnswer string) bool {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fetched")
	r := e2e.Gwctl(t, append([]string{"fetch", b.ID, "--out", out}, gw.Flags(e2e.Recipient)...)...)
	if r.Code == 0 {
		return true
	}
	var missing []string
	for _, p := range b.Parts {
		resp, err := gw.Client(e2e.Recipient).Get(ctxT(t, 30*time.Second), "/v1/bundles/"+b.ID+"/parts/"+p.ID)
		if err != nil {
			missing = append(missing, p.ID+": "+err.Error())
			continue
		}
		if cerr := client.CheckResponse(resp); cerr != nil {
			missing = append(missing, p.ID+": "+cerr.Error())
		} else {
			resp.Body.Close()
		}
	}
	t.Errorf("BUG: the push was answered %s, yet the bundle %s is committed (listed in the inbox, receipt stored) "+
		"and the recipient cannot fetch it: gwctl fetch exit %d: %s\nparts:\n  %s",
		firstAnswer, b.ID, r.Code, strings.TrimSpace(r.Stderr), strings.Join(missing, "\n  "))
	return false
}

// TestReliabilityTwoGateways: two gatewayd processes on one PostgreSQL
// schema and one MinIO bucket. A delivery pushed through A is seen by a
// long poll on B within a second; B serves it verified. A SIGKILLed in the
// middle of a large push loses nothing: the retry through B succeeds once
// and every earlier bundle is still listed once.
func TestReliabilityTwoGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("long: two gateways and a large push (-short)")
	}
	dsn := e2e.PGSchema(t)
	endpoint, access, secret, _, _ := e2e.StartMinIO(t)
	pki := e2e.NewPKI(t)
	env := e2e.S3SecretEnv + "=" + secret
	cfgA, cfgB := e2e.Config(t, pki), e2e.Config(t, pki)
	for _, c := range []*config.Config{cfgA, cfgB} {
		e2e.UsePostgres(c, dsn)
		e2e.UseS3(c, endpoint, access, bucket)
	}
	a := e2e.StartGatewayd(t, cfgA, env)
	b := e2e.StartGatewayd(t, cfgB, env)

	var ids []string
	var cursor int64
	var latencies []time.Duration
	const rounds = 8
	for round := range rounds {
		bd := e2e.NewBundle(t, pki, 256<<10, uint64(round))
		type polled struct {
			ds     []e2e.Delivery
			cursor int64
			err    error
			at     time.Time
		}
		ch := make(chan polled, 1)
		bc := b.Client(e2e.Recipient)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ds, cur, err := e2e.Inbox(ctx, bc, cursor, 10, 100)
			ch <- polled{ds, cur, err, time.Now()}
		}()
		time.Sleep(300 * time.Millisecond) // the long poll is waiting
		mustPush(t, a, bd, 201)
		acceptedAt := time.Now()
		var p polled
		select {
		case p = <-ch:
		case <-time.After(30 * time.Second):
			t.Fatal("the long poll on B never answered")
		}
		e2e.Must(t, p.err, "long poll on B")
		if got := bundleIDs(p.ds); !slices.Equal(got, []string{bd.ID}) {
			t.Fatalf("round %d: B's long poll answered %v, want %s", round, got, bd.ID)
		}
		lat := max(p.at.Sub(acceptedAt), 0)
		latencies = append(latencies, lat)
		if lat >= 2*time.Second {
			t.Errorf("round %d: B saw the delivery %v after A's 201, want < 1 s (< 2 s tolerated)", round, lat)
		}
		cursor = p.cursor
		ids = append(ids, bd.ID)
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	t.Logf("B's long poll saw A's delivery after A's 201 by: median %v, max %v (all: %v)", sorted[len(sorted)/2].Round(time.Millisecond),
		sorted[len(sorted)-1].Round(time.Millisecond), roundAll(latencies))
	b.FetchVerify(t, e2e.Recipient, ids[0])
	b.FetchVerify(t, e2e.Recipient, ids[len(ids)-1])

	// A large push through A, uninterrupted, to know how long one takes.
	big0 := e2e.NewBundle(t, pki, 24<<20, 100)
	start := time.Now()
	mustPush(t, a, big0, 201)
	full := time.Since(start)
	ids = append(ids, big0.ID)

	// The next one: A is SIGKILLed halfway; the retry goes through B.
	big := e2e.NewBundle(t, pki, 24<<20, 101)
	type answer struct {
		res *e2e.PushResult
		err error
	}
	ch := make(chan answer, 1)
	ac := a.Client(e2e.Sender)
	start = time.Now()
	go func() {
		res, err := e2e.Push(context.Background(), ac, big)
		ch <- answer{res, err}
	}()
	time.Sleep(full / 2)
	a.Kill()
	killedAfter := time.Since(start)
	var ans answer
	select {
	case ans = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("the push to A hangs after A was killed")
	}
	t.Logf("a %.1f MB push takes %v; A killed %v into the next one (answer: %v)", float64(big.Size())/1e6,
		full.Round(time.Millisecond), killedAfter.Round(time.Millisecond), answerString(ans.res, ans.err))
	want := 201
	if ans.err == nil && ans.res.Status == 201 {
		want = 200 // A committed it before dying
	}
	mustPush(t, b, big, want)
	ids = append(ids, big.ID)
	if got := bundleIDs(e2e.AllInbox(t, b.Client(e2e.Recipient))); !slices.Equal(got, ids) {
		t.Fatalf("B's inbox after the kill lists %v, want every bundle once: %v", got, ids)
	}
	b.FetchVerify(t, e2e.Recipient, big.ID)

	a.Restart()
	if got := bundleIDs(e2e.AllInbox(t, a.Client(e2e.Recipient))); !slices.Equal(got, ids) {
		t.Fatalf("A's inbox after its restart lists %v, want %v", got, ids)
	}
	a.FetchVerify(t, e2e.Recipient, big.ID)
	b.AuditVerify(t)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func answerString(res *e2e.PushResult, err error) string {
	if err != nil {
		return "no answer (" + err.Error() + ")"
	}
	return itoa(res.Status) + " " + res.Code
}

// TestReliabilityOpenFailureIsReported: gatewayd whose configuration names
// a resource it cannot open (here the SQLite file in a directory that does
// not exist; a PostgreSQL or S3 server that is down at start takes the same
// path) must exit with an error that says what failed, not crash.
func TestReliabilityOpenFailureIsReported(t *testing.T) {
	pki := e2e.NewPKI(t)
	cfg := e2e.Config(t, pki)
	cfg.Store.Path = filepath.Join(t.TempDir(), "no-such-dir", "gateway.db")
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.yaml")
	writeYAML(t, path, cfg)
	ctx := ctxT(t, time.Minute)
	out, err := exec.CommandContext(ctx, e2e.GatewaydBin(t), "--config", path).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("gatewayd with an unopenable store: %v, want a failing exit\n%s", err, out)
	}
	if strings.Contains(string(out), "panic:") || !strings.Contains(string(out), "store") {
		t.Fatalf("gatewayd with an unopenable store exited %d without saying so: it crashed instead\n%s", ee.ExitCode(), out)
	}
	t.Logf("exit %d: %s", ee.ExitCode(), strings.TrimSpace(string(out)))
}
