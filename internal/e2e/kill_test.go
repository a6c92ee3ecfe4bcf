package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/internal/e2e"
)

// killAttachment is the size of the extra attachment of every bundle pushed
// in the kill loops (the brief: 4-8 MB).
const killAttachment = 6 << 20

// killIterations is the number of SIGKILLs of a loop: def, or
// $REHABGW_KILL_ITERATIONS.
func killIterations(t *testing.T, def int) int {
	if v := os.Getenv("REHABGW_KILL_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("REHABGW_KILL_ITERATIONS=%q: want a positive number", v)
		}
		return n
	}
	return def
}

// killSeed seeds the kill points: 1, or $REHABGW_KILL_SEED.
func killSeed(t *testing.T) uint64 {
	if v := os.Getenv("REHABGW_KILL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("REHABGW_KILL_SEED=%q: want a number", v)
		}
		return n
	}
	return 1
}

// TestReliabilityKillDuringPushSQLite: gatewayd on SQLite and the embedded
// S3 server, SIGKILLed during pushes at points spread over the whole push.
func TestReliabilityKillDuringPushSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("long: SIGKILL loop (-short)")
	}
	pki := e2e.NewPKI(t)
	cfg := e2e.Config(t, pki)
	gw := e2e.StartGatewayd(t, cfg)
	killLoop(t, gw, pki, killIterations(t, 40), killSeed(t), []commitTrigger{walTrigger(cfg.Store.Path + "-wal")})
}

// TestReliabilityKillDuringPushPostgres: the same on PostgreSQL and MinIO.
func TestReliabilityKillDuringPushPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("long: SIGKILL loop (-short)")
	}
	dsn := e2e.PGSchema(t)
	// A transparent proxy, to kill gatewayd exactly when its COMMIT passes.
	proxy := e2e.NewProxy(t, e2e.PGAddr(t, dsn))
	endpoint, access, secret, _, _ := e2e.StartMinIO(t)
	pki := e2e.NewPKI(t)
	cfg := e2e.Config(t, pki)
	e2e.UsePostgres(cfg, e2e.DSNVia(dsn, proxy.Addr()))
	e2e.UseS3(cfg, endpoint, access, "rehabgw-e2e")
	gw := e2e.StartGatewayd(t, cfg, e2e.S3SecretEnv+"="+secret)
	killLoop(t, gw, pki, killIterations(t, 20), killSeed(t), []commitTrigger{commitProxyTrigger(proxy, true), commitProxyTrigger(proxy, false)})
}

// commitTrigger kills gatewayd at the commit of the push that follows arm:
// arm installs the trigger (kill is safe from any goroutine); fired is
// closed when it has killed; disarm removes a trigger that did not fire.
type commitTrigger struct {
	name string
	arm  func(kill func()) (fired <-chan struct{}, disarm func())
}

// walTrigger kills gatewayd the moment its SQLite WAL file changes: during
// a push only the commit of the bundle writes to it, so the kill lands in
// the commit or just after it, before the 201 can reach the client.
func walTrigger(wal string) commitTrigger {
	return commitTrigger{name: "at the WAL write", arm: func(kill func()) (<-chan struct{}, func()) {
		fired, stop := make(chan struct{}), make(chan struct{})
		before, _ := os.Stat(wal)
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, err := os.Stat(wal)
				if err == nil && (before == nil || st.Size() != before.Size() || !st.ModTime().Equal(before.ModTime())) {
					kill()
					close(fired)
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
		}()
		var once sync.Once
		return fired, func() { once.Do(func() { close(stop) }) }
	}}
}

// commitProxyTrigger kills gatewayd when its COMMIT reaches the proxy in
// front of PostgreSQL: before forwarding it (the transaction is rolled
// back: the last moment before the commit), or right after (the server
// commits, the client never hears: just after the commit).
func commitProxyTrigger(p *e2e.Proxy, before bool) commitTrigger {
	name := "after COMMIT was sent"
	if before {
		name = "before COMMIT was sent"
	}
	return commitTrigger{name: name, arm: func(kill func()) (<-chan struct{}, func()) {
		return p.OnNextCommit(before, kill)
	}}
}

// killOutcome is what one iteration of a kill loop saw.
type killOutcome struct {
	frac     float64       // kill delay / calibrated push duration
	delay    time.Duration // from the start of the push to SIGKILL
	trigger  string        // the commit trigger that killed, if one did
	answered bool          // the client had the 201 before the kill
	present  bool          // the bundle was committed when gatewayd came back
	restart  time.Duration // SIGKILL to /healthz answering again
}

// killLoop: every iteration pushes a fresh bundle, SIGKILLs gatewayd after a
// delay drawn from a seeded RNG over the whole push (and densely around the
// commit), restarts it and checks that the bundle is either absent (404 for
// the sender, not in the recipient's inbox) or complete (listed once, fetch
// verifies both signatures and every digest); a retry then answers 201 (was
// absent) or 200 with the same receipt (was present), the inbox holds every
// bundle pushed so far exactly once and in order, and the audit chain holds.
//
// Every third iteration after the fixed kill points, a commit trigger kills
// instead of the timer: at the very moment the bundle's commit happens.
func killLoop(t *testing.T, gw *e2e.Proc, pki *e2e.PKI, iterations int, seed uint64, triggers []commitTrigger) {
	tmp := t.TempDir()
	var pushed []string // bundle IDs in commit order: the recipient's inbox

	push := func(b *e2e.Bundle) (*e2e.PushResult, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		res, err := e2e.Push(ctx, gw.Client(e2e.Sender), b)
		return res, time.Since(start), err
	}

	// Calibrate: uninterrupted pushes of the same size, each to a freshly
	// started gatewayd as in the loop (the first push after a start is
	// slower: new connections to the client, the database and S3).
	var durs []time.Duration
	for i := range 5 {
		gw.Restart()
		b := e2e.NewBundleIn(t, filepath.Join(tmp, fmt.Sprintf("cal-%d", i)), pki, killAttachment, seed<<16+uint64(1000+i))
		res, d, err := push(b)
		if err != nil || res.Status != 201 {
			t.Fatalf("calibration push %d: %v %+v", i, err, res)
		}
		pushed = append(pushed, b.ID)
		durs = append(durs, d)
		_ = os.RemoveAll(b.Dir)
	}
	slices.Sort(durs)
	unit := durs[len(durs)/2]
	t.Logf("uninterrupted push of a %.1f MB bundle to a freshly started gatewayd: median %v (min %v, max %v) over %d pushes; seed %d, %d iterations",
		float64(killAttachment)/1e6, unit.Round(time.Microsecond), durs[0].Round(time.Microsecond), durs[len(durs)-1].Round(time.Microsecond), len(durs), seed, iterations)

	// Kill points, as fractions of the calibrated duration: a fixed set
	// first (at once, halfway, and just before and after the commit, which
	// ends the push), then drawn: half uniformly over the whole push, half
	// densely around its end.
	fixed := []float64{0, 0.5, 0.9, 0.95, 0.98, 1.0, 1.02, 1.05, 1.1}
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
	var outcomes []killOutcome
	var missed int
	for i := range iterations {
		var frac float64
		var trigger *commitTrigger
		switch {
		case i < len(fixed):
			frac = fixed[i]
		case len(triggers) > 0 && (i-len(fixed))%3 == 0:
			trigger = &triggers[((i-len(fixed))/3)%len(triggers)]
		case rng.IntN(2) == 0:
			frac = rng.Float64() * 1.15
		default:
			frac = 0.85 + rng.Float64()*0.3
		}
		o := killOutcome{frac: frac, delay: time.Duration(frac * float64(unit))}
		b := e2e.NewBundleIn(t, filepath.Join(tmp, fmt.Sprintf("it-%d", i)), pki, killAttachment, seed<<16+uint64(i))

		type answer struct {
			res *e2e.PushResult
			err error
			at  time.Time
		}
		ch := make(chan answer, 1)
		c := gw.Client(e2e.Sender)
		var fired <-chan struct{}
		var disarm func()
		var killedAt time.Time
		var triggeredAt atomic.Int64 // UnixNano
		if trigger != nil {
			fired, disarm = trigger.arm(func() {
				triggeredAt.Store(time.Now().UnixNano())
				gw.Signal(syscall.SIGKILL)
			})
		}
		start := time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := e2e.Push(ctx, c, b)
			ch <- answer{res, err, time.Now()}
		}()
		var a answer
		if trigger == nil {
			time.Sleep(time.Until(start.Add(o.delay)))
			killedAt = time.Now()
			gw.Kill()
			select {
			case a = <-ch:
			case <-time.After(30 * time.Second):
				t.Fatalf("iteration %d: the push hangs 30 s after gatewayd was killed", i)
			}
		} else {
			select {
			case a = <-ch:
			case <-time.After(30 * time.Second):
				t.Fatalf("iteration %d: the push hangs 30 s (trigger %s)", i, trigger.name)
			}
			// The trigger may still be finishing (the client can see the
			// connection die before the hook returns).
			select {
			case <-fired:
			case <-time.After(2 * time.Second):
			}
			select {
			case <-fired:
				o.trigger = trigger.name
				killedAt = time.Unix(0, triggeredAt.Load())
				o.delay = killedAt.Sub(start)
				o.frac = float64(o.delay) / float64(unit)
			default: // the trigger missed the commit; kill now
				disarm()
				missed++
				killedAt = time.Now()
				o.delay = killedAt.Sub(start)
				o.frac = float64(o.delay) / float64(unit)
			}
			gw.Kill()
		}
		if a.err == nil && a.res.Status != 201 {
			t.Fatalf("iteration %d: the interrupted push was answered %d %s, want 201 or no answer", i, a.res.Status, a.res.Code)
		}
		o.answered = a.err == nil && a.at.Before(killedAt)
		gw.Restart()
		o.restart = time.Since(killedAt)

		// Absent or complete, nothing in between.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		status, acceptance, err := e2e.GetBundle(ctx, gw.Client(e2e.Sender), b.ID)
		cancel()
		e2e.Must(t, err, "iteration %d: GET the bundle as its sender", i)
		n := e2e.CountBundle(e2e.AllInbox(t, gw.Client(e2e.Recipient)), b.ID)
		switch {
		case status == 404 && n == 0:
		case status == 200 && n == 1:
			o.present = true
			gw.FetchVerify(t, e2e.Recipient, b.ID)
		default:
			t.Fatalf("iteration %d (kill at %.2f of a push): half-stored after restart: GET as sender %d, %d deliveries in the recipient's inbox",
				i, frac, status, n)
		}
		if a.err == nil && !o.present {
			t.Fatalf("iteration %d (kill at %.2f): the push was answered 201 but the bundle is gone after the restart", i, frac)
		}
		if a.err == nil && !bytes.Equal(a.res.Body, acceptance) {
			t.Fatalf("iteration %d: the receipt of the answered push differs from the stored acceptance", i)
		}

		// The retry: 201 when absent, 200 and the same receipt when present.
		res, _, err := push(b)
		e2e.Must(t, err, "iteration %d: retry", i)
		switch {
		case !o.present && res.Status != 201:
			t.Fatalf("iteration %d: retry of an absent bundle answered %d %s, want 201", i, res.Status, res.Code)
		case o.present && res.Status != 200:
			t.Fatalf("iteration %d: retry of a committed bundle answered %d %s, want 200", i, res.Status, res.Code)
		case o.present && !bytes.Equal(res.Body, acceptance):
			t.Fatalf("iteration %d: the retry's receipt differs from the stored acceptance", i)
		}
		pushed = append(pushed, b.ID)
		checkInbox(t, gw, pushed)
		gw.AuditVerify(t)
		outcomes = append(outcomes, o)
		_ = os.RemoveAll(b.Dir)
	}
	if missed > 0 {
		t.Logf("%d commit triggers did not fire (the push ended first); those iterations killed after the push", missed)
	}
	reportKills(t, unit, outcomes)
}

// checkInbox: the recipient's whole inbox lists exactly ids, in order, each
// once, with increasing seq.
func checkInbox(t *testing.T, gw *e2e.Proc, ids []string) {
	t.Helper()
	all := e2e.AllInbox(t, gw.Client(e2e.Recipient))
	got := make([]string, len(all))
	for i, d := range all {
		got[i] = d.BundleID
		if i > 0 && d.Seq <= all[i-1].Seq {
			t.Fatalf("inbox: seq %d after %d", d.Seq, all[i-1].Seq)
		}
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("inbox lists %d deliveries, want %d (each pushed bundle once, in commit order)\ngot:  %v\nwant: %v", len(got), len(ids), got, ids)
	}
}

func reportKills(t *testing.T, unit time.Duration, outs []killOutcome) {
	var present, absent, afterCommitUnanswered int
	lastAbsent, firstPresent := -1.0, 99.0
	var restarts []time.Duration
	var b strings.Builder
	for i, o := range outs {
		state := "absent"
		if o.present {
			state = "complete"
			present++
			firstPresent = min(firstPresent, o.frac)
			if !o.answered {
				afterCommitUnanswered++
			}
		} else {
			absent++
			lastAbsent = max(lastAbsent, o.frac)
		}
		restarts = append(restarts, o.restart)
		how := "timer"
		if o.trigger != "" {
			how = "commit trigger, " + o.trigger
		}
		fmt.Fprintf(&b, "  %2d: kill at %5.3f (%9v, %s) → %-8s answered before kill: %v\n", i, o.frac, o.delay.Round(time.Microsecond), how, state, o.answered)
	}
	slices.Sort(restarts)
	t.Logf("kill points (fraction of the %v push):\n%s", unit.Round(time.Microsecond), b.String())
	t.Logf("%d kills: %d left the bundle absent, %d complete (%d of them killed after the commit but before the client had the 201); latest kill leaving it absent at %.3f, earliest leaving it complete at %.3f; restart (SIGKILL to /healthz) median %v, max %v",
		len(outs), absent, present, afterCommitUnanswered, lastAbsent, firstPresent,
		restarts[len(restarts)/2].Round(time.Millisecond), restarts[len(restarts)-1].Round(time.Millisecond))
}
