package storetest

// The conformance suite of store.DeadlineStore: cases recorded through the
// real engine (gateway/deadline) with the shipped example agreements,
// breach detection exactly once (also concurrently, from several stores on
// one database), the queries, and the notification outbox. Time is always
// injected; nothing sleeps.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Copenhagen on any machine

	"github.com/google/uuid"

	"github.com/rehabgw/rehabgw/gateway/deadline"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/store"
)

// DeadlineStore is what RunDeadlines tests: a Store with its deadline side.
type DeadlineStore interface {
	store.Store
	store.DeadlineStore
}

// RunDeadlines runs the deadline suite. open returns a new, empty store.
func RunDeadlines(t *testing.T, open func(t *testing.T) DeadlineStore) {
	fresh := func(t *testing.T) DeadlineStore {
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s DeadlineStore)
	}{
		{"RecordCaseRoundTrip", testRecordCaseRoundTrip},
		{"RecordCaseNothingWritten", testRecordCaseNothingWritten},
		{"RecordCaseInvalid", testRecordCaseInvalid},
		{"CommitBundleWithCase", testCommitBundleWithCase},
		{"DetectBreaches", testDetectBreaches},
		{"DetectBreachesLimit", testDetectBreachesLimit},
		{"BreachFilters", testBreachFilters},
		{"CaseTraceMeetingMoved", testCaseTraceMeetingMoved},
		{"Outbox", testOutbox},
		{"DeadlineContextCanceled", testDeadlineContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
	t.Run("DetectConcurrent", func(t *testing.T) { DeadlineConcurrent(t, fresh(t)) })
}

// DeadlineConcurrent: 500 overdue obligations, and 4 goroutines spread
// over the given stores (which share one empty database: several stores
// stand for several processes) detect breaches at once, in small batches.
// Every obligation must be breached exactly once: 500 breaches, no
// duplicates, 500 notifications.
func DeadlineConcurrent(t *testing.T, stores ...DeadlineStore) {
	const (
		cases    = 50
		perCase  = 10
		total    = cases * perCase
		workers  = 4
		detectAt = "2026-06-01 12:00"
	)
	ctx := t.Context()
	s0 := stores[0]
	base := at("2026-05-04 08:00")
	for c := range cases {
		key := caseKey(fmt.Sprintf("kommune-%04d", 101+c%3), "conc-"+uuid.NewString(), "2026-1")
		var obs []deadline.Obligation
		for i := range perCase {
			obs = append(obs, hourObligation(fmt.Sprintf("regel-%d/1", i), base.Add(time.Duration(c*perCase+i)*time.Minute)))
		}
		must(t, s0.RecordCase(ctx, key, creates(base, obs...)))
	}
	if n := openTotal(t, s0); n != total {
		t.Fatalf("%d open obligations before detection, want %d", n, total)
	}

	now := at(detectAt)
	var (
		mu    sync.Mutex
		found []store.Breach
		wg    sync.WaitGroup
	)
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for {
				bs, err := s.DetectBreaches(ctx, now, 7, missedBy(t))
				if err != nil {
					t.Errorf("worker %d: DetectBreaches: %v", w, err)
					return
				}
				if len(bs) == 0 {
					return
				}
				mu.Lock()
				found = append(found, bs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[string]bool{}
	ids := map[int64]bool{}
	for _, b := range found {
		k := b.Municipality + "|" + b.CaseID + "|" + b.ObligationID
		if seen[k] || ids[b.ID] {
			t.Fatalf("breach of %s (id %d) reported twice", k, b.ID)
		}
		seen[k], ids[b.ID] = true, true
	}
	if len(found) != total {
		t.Fatalf("the detectors reported %d breaches, want %d", len(found), total)
	}
	for _, s := range stores {
		all, err := s.Breaches(ctx, store.BreachFilter{Limit: 10 * total})
		must(t, err)
		if len(all) != total {
			t.Errorf("Breaches lists %d, want %d", len(all), total)
		}
		if n := openTotal(t, s); n != total {
			t.Errorf("%d open (breached) obligations after detection, want %d", n, total)
		}
	}
	ns, err := s0.ClaimNotifications(ctx, now, 10*total, time.Minute)
	must(t, err)
	byBreach := map[int64]bool{}
	for _, n := range ns {
		if byBreach[n.BreachID] || !ids[n.BreachID] {
			t.Fatalf("notification %d for breach %d: twice, or for no reported breach", n.ID, n.BreachID)
		}
		byBreach[n.BreachID] = true
	}
	if len(ns) != total {
		t.Errorf("%d notifications, want %d", len(ns), total)
	}
	if bs, err := s0.DetectBreaches(ctx, now.Add(time.Hour), 0, missedBy(t)); err != nil || len(bs) != 0 {
		t.Errorf("DetectBreaches after all were found: %d, %v", len(bs), err)
	}
}

// ---- helpers ----

var exampleSet = sync.OnceValues(func() (*deadline.Set, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		p := filepath.Join(dir, "configs", "agreements.example.yaml")
		if _, err := os.Stat(p); err == nil {
			return deadline.LoadFile(p, deadline.LoadOptions{})
		}
		up := filepath.Dir(dir)
		if up == dir {
			return nil, errors.New("configs/agreements.example.yaml not found above the working directory")
		}
		dir = up
	}
})

// agreements returns the example agreements (configs/agreements.example.yaml).
func agreements(t *testing.T) *deadline.Set {
	t.Helper()
	set, err := exampleSet()
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// at parses "YYYY-MM-DD HH:MM" in Europe/Copenhagen.
func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, deadline.Zone())
	if err != nil {
		panic(err)
	}
	return t
}

func day(s string) deadline.Date {
	d, err := deadline.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func caseKey(municipality, caseID, version string) store.CaseKey {
	return store.CaseKey{Municipality: municipality, CaseID: caseID, Region: "region-1084", Agreement: version}
}

// steps is the CaseFunc a gateway uses: the case's own agreement (from the
// key as stored) applied to each event in turn.
func steps(t *testing.T, events ...deadline.Event) store.CaseFunc {
	set := agreements(t)
	return func(key store.CaseKey, st *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		a, ok := set.Version(key.Region, key.Agreement)
		if !ok {
			return nil, nil, fmt.Errorf("no agreement %s", key.AgreementKey())
		}
		var all []deadline.Change
		for _, e := range events {
			ch, err := a.Step(st, e)
			if err != nil {
				return nil, nil, err
			}
			all = append(all, ch...)
		}
		return all, events, nil
	}
}

// missedBy computes "missed by" with the case's agreement.
func missedBy(t *testing.T) store.MissedByFunc {
	set := agreements(t)
	return func(key store.CaseKey, o deadline.Obligation, now time.Time) deadline.MissedBy {
		a, ok := set.Version(key.Region, key.Agreement)
		if !ok {
			t.Errorf("MissedBy: no agreement %s", key.AgreementKey())
			return deadline.MissedBy{}
		}
		return a.MissedBy(o, now)
	}
}

// hourObligation is a pending hour-rule obligation due at due.
func hourObligation(id string, due time.Time) deadline.Obligation {
	rule := id[:strings.IndexByte(id, '/')]
	return deadline.Obligation{
		ID: id, Rule: rule, Party: deadline.PartyGateway, Unit: deadline.UnitHours,
		Anchor: deadline.EventBundleReceived, AnchorAt: due.Add(-time.Hour), Due: due,
		Status: deadline.StatusPending, CreatedAt: due.Add(-time.Hour),
	}
}

// creates is a CaseFunc recording a henvisning received at when and
// creating the given obligations (not the engine's: tests of detection and
// queries choose their own).
func creates(when time.Time, obs ...deadline.Obligation) store.CaseFunc {
	return func(_ store.CaseKey, _ *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		var ch []deadline.Change
		for _, o := range obs {
			ch = append(ch, deadline.Change{Kind: deadline.ChangeCreate, Obligation: o, Reason: deadline.ReasonPlanned})
		}
		return ch, []deadline.Event{{Type: deadline.EventBundleReceived, At: when, Purpose: "henvisning", BundleID: uuid.NewString()}}, nil
	}
}

func openTotal(t *testing.T, s store.DeadlineStore) int {
	t.Helper()
	m, err := s.OpenObligationsByRule(t.Context())
	must(t, err)
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func trace(t *testing.T, s store.DeadlineStore, key store.CaseKey) *store.CaseTrace {
	t.Helper()
	tr, err := s.CaseTrace(t.Context(), key.Municipality, key.CaseID)
	if err != nil {
		t.Fatalf("CaseTrace: %v", err)
	}
	return tr
}

// asJSON renders v as JSON: times with their offsets, so values equal as
// instants and offsets compare equal whatever their *time.Location.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

// canon returns the obligations with every time in UTC: the store may
// keep a time in another zone than the engine gave it (as the same instant).
func canon(obs ...deadline.Obligation) []deadline.Obligation {
	utc := func(p **time.Time) {
		if *p != nil {
			u := (**p).UTC()
			*p = &u
		}
	}
	out := make([]deadline.Obligation, len(obs))
	for i, o := range obs {
		o.AnchorAt, o.Meeting, o.Due, o.CreatedAt = o.AnchorAt.UTC(), o.Meeting.UTC(), o.Due.UTC(), o.CreatedAt.UTC()
		o.CreatedBy.At = o.CreatedBy.At.UTC()
		if o.SatisfiedBy != nil {
			r := *o.SatisfiedBy
			r.At = r.At.UTC()
			o.SatisfiedBy = &r
		}
		utc(&o.SatisfiedAt)
		utc(&o.BreachedAt)
		utc(&o.CancelledAt)
		utc(&o.ReplannedFrom)
		out[i] = o
	}
	return out
}

func allBreaches(t *testing.T, s store.DeadlineStore) []store.Breach {
	t.Helper()
	bs, err := s.Breaches(t.Context(), store.BreachFilter{})
	must(t, err)
	return bs
}

func obligation(t *testing.T, tr *store.CaseTrace, id string) deadline.Obligation {
	t.Helper()
	for _, o := range tr.Obligations {
		if o.ID == id {
			return o
		}
	}
	t.Fatalf("no obligation %s in the trace", id)
	return deadline.Obligation{}
}

// ---- the tests ----

// testRecordCaseRoundTrip: a forberedelse naming a meeting 2 hverdage away
// (the rule says 5 before, 12:00) is a breach at once, attributed to the
// municipality, missed by 3 hverdage, with its notification, in the same
// transaction; the state reloads losslessly for the next event.
func testRecordCaseRoundTrip(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	set := agreements(t)
	a, _ := set.Version("region-1084", "2026-1")
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	received := at("2026-03-06 10:00") // Friday; meeting Tuesday 10 March
	first := []deadline.Event{
		{Type: deadline.EventBundleReceived, At: received, Purpose: "forberedelse", BundleID: "b1"},
		{Type: deadline.EventMeetingSet, At: received, MeetingDate: day("2026-03-10"), BundleID: "b1"},
	}
	must(t, s.RecordCase(ctx, key, steps(t, first...)))

	// The reference: the engine alone.
	ref := &deadline.CaseState{}
	for _, e := range first {
		if _, err := a.Step(ref, e); err != nil {
			t.Fatal(err)
		}
	}

	bs := allBreaches(t, s)
	if len(bs) != 1 {
		t.Fatalf("%d breaches, want 1: %+v", len(bs), bs)
	}
	b := bs[0]
	want := store.Breach{
		ID: b.ID, ObligationID: "materiale-foer-moedet/1", Municipality: key.Municipality, CaseID: key.CaseID,
		Region: "region-1084", Agreement: "2026-1", Rule: "materiale-foer-moedet", Party: "municipality",
		Due: at("2026-03-03 12:00").UTC(), BreachedAt: received.UTC(),
		MissedBy: deadline.MissedBy{Workdays: 3}, Status: deadline.StatusMetLate,
	}
	if b != want {
		t.Errorf("breach\n got %+v\nwant %+v", b, want)
	}
	if b.Due.Location() != time.UTC || b.BreachedAt.Location() != time.UTC {
		t.Errorf("breach times not in UTC: %v, %v", b.Due, b.BreachedAt)
	}

	// Its notification was written with it, due at once.
	ns, err := s.ClaimNotifications(ctx, received, 10, time.Minute)
	must(t, err)
	if len(ns) != 1 || ns[0].BreachID != b.ID || ns[0].Attempts != 1 {
		t.Fatalf("notifications %+v, want one for breach %d", ns, b.ID)
	}
	var payload store.Breach
	must(t, json.Unmarshal(ns[0].Payload, &payload))
	if payload != want {
		t.Errorf("payload\n got %+v\nwant %+v", payload, want)
	}
	var raw map[string]any
	must(t, json.Unmarshal(ns[0].Payload, &raw))
	for _, k := range []string{"id", "case_id", "rule", "party", "due", "status", "missed_by"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("payload without %q: %s", k, ns[0].Payload)
		}
	}
	if strings.Contains(strings.ToLower(string(ns[0].Payload)), "cpr") {
		t.Errorf("payload mentions CPR: %s", ns[0].Payload)
	}

	// The trace is the engine's state, losslessly.
	tr := trace(t, s, key)
	if tr.Key != key {
		t.Errorf("trace key %+v, want %+v", tr.Key, key)
	}
	if !tr.Created.Equal(received) {
		t.Errorf("case created %v, want %v", tr.Created, received)
	}
	if g, w := asJSON(t, canon(tr.Obligations...)), asJSON(t, canon(ref.Obligations...)); g != w {
		t.Errorf("obligations\n got %s\nwant %s", g, w)
	}
	if g, w := asJSON(t, tr.Events), asJSON(t, first); g != w {
		t.Errorf("events\n got %s\nwant %s", g, w)
	}
	if len(tr.Breaches) != 1 || tr.Breaches[0] != want {
		t.Errorf("trace breaches %+v", tr.Breaches)
	}
	if m, err := s.OpenObligationsByRule(ctx); err != nil || m["sk-henter-materiale"] != 1 ||
		m["sk-udtalelse-foer-moedet"] != 1 || m["indstilling-efter-moedet"] != 1 || m["materiale-foer-moedet"] != 0 {
		t.Errorf("OpenObligationsByRule = %v, %v", m, err)
	}

	// The next event: fn sees the stored state and the stored agreement,
	// even when the caller proposes another version.
	pull := deadline.Event{Type: deadline.EventBundlePulled, At: at("2026-03-09 09:00"), Purpose: "forberedelse", Function: "sundhedskoordinator", BundleID: "b1"}
	var sawKey store.CaseKey
	var sawState string
	inner := steps(t, pull)
	must(t, s.RecordCase(ctx, caseKey(key.Municipality, key.CaseID, "2025-1"), func(k store.CaseKey, st *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		sawKey, sawState = k, asJSON(t, st)
		return inner(k, st)
	}))
	if sawKey != key {
		t.Errorf("fn got key %+v, want the stored %+v", sawKey, key)
	}
	if w := asJSON(t, ref); sawState != w {
		t.Errorf("fn got state\n %s\nwant %s", sawState, w)
	}
	if _, err := a.Step(ref, pull); err != nil {
		t.Fatal(err)
	}
	tr = trace(t, s, key)
	if g, w := asJSON(t, canon(tr.Obligations...)), asJSON(t, canon(ref.Obligations...)); g != w {
		t.Errorf("obligations after the pull\n got %s\nwant %s", g, w)
	}
	if o := obligation(t, tr, "sk-henter-materiale/1"); o.Status != deadline.StatusMet {
		t.Errorf("sk-henter-materiale/1 is %s, want met", o.Status)
	}
	if len(tr.Events) != 3 {
		t.Errorf("%d events, want 3", len(tr.Events))
	}
	if n := len(allBreaches(t, s)); n != 1 {
		t.Errorf("%d breaches after a timely event, want 1", n)
	}
	if keys, err := s.CasesByID(ctx, key.CaseID); err != nil || len(keys) != 1 || keys[0] != key {
		t.Errorf("CasesByID = %v, %v", keys, err)
	}
}

// testRecordCaseNothingWritten: a failing fn, or one that returns nothing,
// writes nothing; its error comes back as it is.
func testRecordCaseNothingWritten(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	boom := errors.New("engine says no")
	var fed bool
	err := s.RecordCase(ctx, key, func(k store.CaseKey, st *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		fed = true
		ch, evs, _ := steps(t, deadline.Event{Type: deadline.EventMeetingSet, At: at("2026-03-06 10:00"), MeetingDate: day("2026-03-10")})(k, st)
		return ch, evs, boom
	})
	if !fed || !errors.Is(err, boom) || err != boom {
		t.Fatalf("RecordCase with a failing fn: %v (called %v), want the fn's error itself", err, fed)
	}
	if _, err := s.CaseTrace(ctx, key.Municipality, key.CaseID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("CaseTrace after a failed RecordCase: %v, want NotFound", err)
	}
	must(t, s.RecordCase(ctx, key, func(store.CaseKey, *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		return nil, nil, nil
	}))
	if _, err := s.CaseTrace(ctx, key.Municipality, key.CaseID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("CaseTrace after an empty RecordCase: %v, want NotFound", err)
	}

	// An existing case: a failing fn leaves it as it was.
	must(t, s.RecordCase(ctx, key, steps(t, deadline.Event{Type: deadline.EventMeetingSet, At: at("2026-03-06 10:00"), MeetingDate: day("2026-03-10")})))
	before := asJSON(t, trace(t, s, key))
	breaches := len(allBreaches(t, s))
	err = s.RecordCase(ctx, key, func(k store.CaseKey, st *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		ch, evs, _ := steps(t, deadline.Event{Type: deadline.EventBundleReceived, At: at("2026-03-06 11:00"), Purpose: "forberedelse", BundleID: "b1"})(k, st)
		if len(ch) == 0 {
			t.Errorf("the engine planned nothing")
		}
		return ch, evs, boom
	})
	if err != boom {
		t.Fatalf("RecordCase with a failing fn: %v", err)
	}
	if after := asJSON(t, trace(t, s, key)); after != before {
		t.Errorf("a failed RecordCase changed the case:\n%s\n%s", before, after)
	}
	if n := len(allBreaches(t, s)); n != breaches {
		t.Errorf("%d breaches after a failed RecordCase, was %d", n, breaches)
	}
	if ns, err := s.ClaimNotifications(ctx, at("2030-01-01 00:00"), 100, time.Minute); err != nil || len(ns) != breaches {
		t.Errorf("%d notifications (%v), want %d", len(ns), err, breaches)
	}
}

func testRecordCaseInvalid(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	ev := steps(t, deadline.Event{Type: deadline.EventMeetingSet, At: at("2026-03-06 10:00"), MeetingDate: day("2026-03-10")})
	for name, key := range map[string]store.CaseKey{
		"no municipality":       {CaseID: "x", Region: "region-1084", Agreement: "2026-1"},
		"no case ID":            {Municipality: "kommune-0101", Region: "region-1084", Agreement: "2026-1"},
		"new without agreement": {Municipality: "kommune-0101", CaseID: "x-" + uuid.NewString()},
		"region@version":        {Municipality: "kommune-0101", CaseID: "x", Region: "region-1084", Agreement: "region-1084@2026-1"},
		"NUL":                   {Municipality: "kommune-0101", CaseID: "x\x00", Region: "region-1084", Agreement: "2026-1"},
	} {
		wantKind(t, "RecordCase "+name, s.RecordCase(ctx, key, ev), errs.Invalid, "store.invalid")
	}
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	wantKind(t, "RecordCase without fn", s.RecordCase(ctx, key, nil), errs.Invalid, "store.invalid")
	bad := func(store.CaseKey, *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		return nil, []deadline.Event{{Type: "no-such-event", At: at("2026-03-06 10:00")}}, nil
	}
	wantKind(t, "RecordCase with an invalid event", s.RecordCase(ctx, key, bad), errs.Invalid, "store.invalid")
	nul := creates(at("2026-03-06 10:00"), hourObligation("regel/1", at("2026-03-06 11:00")))
	withNUL := func(k store.CaseKey, st *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		ch, evs, err := nul(k, st)
		ch[0].Obligation.CancelReason = "a\x00b"
		return ch, evs, err
	}
	wantKind(t, "RecordCase with NUL in an obligation", s.RecordCase(ctx, key, withNUL), errs.Invalid, "store.invalid")
	if _, err := s.CaseTrace(ctx, key.Municipality, key.CaseID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("CaseTrace after invalid RecordCase: %v", err)
	}
	if _, err := s.CaseTrace(ctx, "kommune-0101", "a\x00b"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("CaseTrace of a NUL case ID: %v", err)
	}
	if keys, err := s.CasesByID(ctx, "\xff"); err != nil || len(keys) != 0 {
		t.Errorf("CasesByID(invalid) = %v, %v", keys, err)
	}
	if bs, err := s.Breaches(ctx, store.BreachFilter{Rule: "\x00"}); err != nil || len(bs) != 0 {
		t.Errorf("Breaches(invalid rule) = %v, %v", bs, err)
	}
	_, err := s.DetectBreaches(ctx, time.Now(), 10, nil)
	wantKind(t, "DetectBreaches without MissedBy", err, errs.Invalid, "store.invalid")
}

// testCommitBundleWithCase: the bundle and the case's update commit
// together or not at all; an identical re-push does not call fn.
func testCommitBundleWithCase(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	b := NewBundle(uuid.NewString(), 1)
	b.CaseID = key.CaseID
	received := at("2026-03-06 10:00")
	ev := []deadline.Event{
		{Type: deadline.EventBundleReceived, At: received, Purpose: "forberedelse", BundleID: b.ID},
		{Type: deadline.EventMeetingSet, At: received, MeetingDate: day("2026-03-10"), BundleID: b.ID},
	}
	calls := 0
	fn := func(k store.CaseKey, st *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
		calls++
		return steps(t, ev...)(k, st)
	}
	top, audits := lastSeq(t, s), len(AllAudit(t, s))

	// fn fails: neither the bundle nor the case.
	boom := errors.New("engine says no")
	_, _, err := s.CommitBundleWithCase(ctx, b, []store.Delivery{to("region-1084", "sundhedskoordinator")}, Entry("push", b.CPR), key,
		func(k store.CaseKey, st *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
			ch, evs, _ := fn(k, st)
			return ch, evs, boom
		})
	if err != boom {
		t.Fatalf("CommitBundleWithCase with a failing fn: %v, want the fn's error", err)
	}
	// The case cannot be recorded (an invalid event): no bundle either.
	_, _, err = s.CommitBundleWithCase(ctx, b, []store.Delivery{to("region-1084", "sundhedskoordinator")}, Entry("push", b.CPR), key,
		func(store.CaseKey, *deadline.CaseState) ([]deadline.Change, []deadline.Event, error) {
			return nil, []deadline.Event{{Type: deadline.EventBundleReceived, At: received}}, nil
		})
	wantKind(t, "CommitBundleWithCase with an invalid event", err, errs.Invalid, "store.invalid")
	if _, err := s.Bundle(ctx, b.ID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("Bundle after failed CommitBundleWithCase: %v, want NotFound", err)
	}
	if _, err := s.CaseTrace(ctx, key.Municipality, key.CaseID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("CaseTrace after failed CommitBundleWithCase: %v, want NotFound", err)
	}
	if n := lastSeq(t, s); n != top {
		t.Errorf("LastSeq %d after failed commits, was %d", n, top)
	}
	if n := len(AllAudit(t, s)); n != audits {
		t.Errorf("%d audit entries after failed commits, was %d", n, audits)
	}
	if n := len(allBreaches(t, s)); n != 0 {
		t.Errorf("%d breaches after failed commits", n)
	}

	// Success: both.
	calls = 0
	got, created, err := s.CommitBundleWithCase(ctx, b, []store.Delivery{to("region-1084", "sundhedskoordinator")}, Entry("push", b.CPR), key, fn)
	if err != nil || !created || calls != 1 {
		t.Fatalf("CommitBundleWithCase: created=%v err=%v calls=%d", created, err, calls)
	}
	sameBundle(t, "CommitBundleWithCase result", got, stored(b))
	if _, err := s.Bundle(ctx, b.ID); err != nil {
		t.Errorf("Bundle: %v", err)
	}
	tr := trace(t, s, key)
	if len(tr.Events) != 2 || tr.Events[0].BundleID != b.ID || len(tr.Obligations) != 4 || len(tr.Breaches) != 1 {
		t.Errorf("trace after CommitBundleWithCase: %d events, %d obligations, %d breaches", len(tr.Events), len(tr.Obligations), len(tr.Breaches))
	}
	CheckChain(t, AllAudit(t, s))

	// An identical re-push: fn is not called, nothing changes.
	before := asJSON(t, tr)
	calls = 0
	_, created, err = s.CommitBundleWithCase(ctx, b, []store.Delivery{to("region-1084", "sundhedskoordinator")}, Entry("push", b.CPR), key, fn)
	if err != nil || created || calls != 0 {
		t.Errorf("identical re-push: created=%v err=%v calls=%d", created, err, calls)
	}
	// A conflicting one: neither.
	other := NewBundle(b.ID, 1)
	_, _, err = s.CommitBundleWithCase(ctx, other, nil, Entry("push", other.CPR), key, fn)
	wantKind(t, "conflicting re-push", err, errs.Conflict, "store.conflict")
	if calls != 0 {
		t.Errorf("fn called %d times for re-pushes", calls)
	}
	if after := asJSON(t, trace(t, s, key)); after != before {
		t.Errorf("re-pushes changed the case")
	}
}

// testDetectBreaches: the detector's result matches the engine's reference
// semantics (deadline.Agreement.Breaches), each breach is found once, and
// an obligation breached and then met late keeps its one breach, now
// met_late with the final figure.
func testDetectBreaches(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	set := agreements(t)
	a, _ := set.Version("region-1084", "2026-1")
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	henv := deadline.Event{Type: deadline.EventBundleReceived, At: at("2026-04-01 10:00"), Purpose: "henvisning", BundleID: "h1"}
	must(t, s.RecordCase(ctx, key, steps(t, henv)))
	// kf-henter-henvisning/1 is due Wednesday 8 April 2026, end of day (Easter).
	for _, now := range []time.Time{at("2026-04-08 12:00"), at("2026-04-08 23:59").Add(59*time.Second + 999999*time.Microsecond)} {
		if bs, err := s.DetectBreaches(ctx, now, 0, missedBy(t)); err != nil || len(bs) != 0 {
			t.Fatalf("DetectBreaches(%v) = %+v, %v; want none yet", now, bs, err)
		}
	}
	now := at("2026-04-09 08:00")
	ref := a.Breaches(trace(t, s, key).Obligations, now)
	bs, err := s.DetectBreaches(ctx, now, 0, missedBy(t))
	must(t, err)
	if len(bs) != 1 || len(ref) != 1 {
		t.Fatalf("DetectBreaches = %+v; the reference finds %d", bs, len(ref))
	}
	b := bs[0]
	want := store.Breach{
		ID: b.ID, ObligationID: "kf-henter-henvisning/1", Municipality: key.Municipality, CaseID: key.CaseID,
		Region: "region-1084", Agreement: "2026-1", Rule: "kf-henter-henvisning", Party: "klinisk-funktion",
		Due: store.NormTime(ref[0].Obligation.Due), BreachedAt: now.UTC(),
		MissedBy: deadline.MissedBy{Workdays: 1}, Status: deadline.StatusBreached,
	}
	if b != want || b.ID == 0 {
		t.Errorf("breach\n got %+v\nwant %+v", b, want)
	}
	if got := allBreaches(t, s); len(got) != 1 || got[0] != want {
		t.Errorf("Breaches = %+v", got)
	}
	o := obligation(t, trace(t, s, key), "kf-henter-henvisning/1")
	wo := ref[0].Obligation
	if g, w := asJSON(t, canon(o)), asJSON(t, canon(wo)); g != w {
		t.Errorf("stored obligation\n got %s\nwant %s", g, w)
	}
	// Exactly once: later detections find nothing new.
	for _, later := range []time.Time{now, now.Add(time.Hour), at("2026-04-10 08:00")} {
		if bs, err := s.DetectBreaches(ctx, later, 0, missedBy(t)); err != nil || len(bs) != 0 {
			t.Errorf("DetectBreaches(%v) again = %+v, %v", later, bs, err)
		}
	}
	if m, err := s.OpenObligationsByRule(ctx); err != nil || m["kf-henter-henvisning"] != 1 || m["kf-attest"] != 1 {
		t.Errorf("OpenObligationsByRule = %v, %v (breached ones are open)", m, err)
	}

	// Met late: the breach stays one, now met_late, missed by 2 (9, 10 April).
	pull := deadline.Event{Type: deadline.EventBundlePulled, At: at("2026-04-10 09:00"), Purpose: "henvisning", Function: "klinisk-funktion", BundleID: "h1"}
	must(t, s.RecordCase(ctx, key, steps(t, pull)))
	got := allBreaches(t, s)
	want.Status, want.MissedBy = deadline.StatusMetLate, deadline.MissedBy{Workdays: 2}
	if len(got) != 1 || got[0] != want {
		t.Errorf("after the late pull: %+v\nwant %+v", got, want)
	}
	if o := obligation(t, trace(t, s, key), "kf-henter-henvisning/1"); o.Status != deadline.StatusMetLate || o.BreachedAt == nil || !o.BreachedAt.Equal(now) {
		t.Errorf("obligation after the late pull: %+v", o)
	}
	if ns, err := s.ClaimNotifications(ctx, at("2026-05-01 00:00"), 0, time.Minute); err != nil || len(ns) != 1 || ns[0].BreachID != b.ID {
		t.Errorf("notifications: %+v, %v; want the one", ns, err)
	}
	if m, err := s.OpenObligationsByRule(ctx); err != nil || m["kf-henter-henvisning"] != 0 {
		t.Errorf("OpenObligationsByRule after the pull = %v, %v", m, err)
	}
}

// testDetectBreachesLimit: at most limit per call, earliest due first, and
// never one not yet due.
func testDetectBreachesLimit(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	base := at("2026-05-04 08:00")
	var obs []deadline.Obligation
	for i := range 12 {
		// Created out of due order.
		obs = append(obs, hourObligation(fmt.Sprintf("regel-%02d/1", i), base.Add(time.Duration((i*5)%12)*time.Hour)))
	}
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	must(t, s.RecordCase(ctx, key, creates(base.Add(-time.Hour), obs...)))
	now := base.Add(9*time.Hour + time.Second) // 10 are overdue (due base+0h .. base+9h)
	var dues []time.Time
	for _, limit := range []int{4, 4, 4, 4} {
		bs, err := s.DetectBreaches(ctx, now, limit, missedBy(t))
		must(t, err)
		if len(bs) > limit {
			t.Fatalf("DetectBreaches(limit %d) returned %d", limit, len(bs))
		}
		for _, b := range bs {
			dues = append(dues, b.Due)
			if !b.Due.Before(now) {
				t.Errorf("breach of %s due %v at %v", b.ObligationID, b.Due, now)
			}
			if b.MissedBy.Hours <= 0 {
				t.Errorf("breach of %s without hours missed: %+v", b.ObligationID, b.MissedBy)
			}
		}
	}
	if len(dues) != 10 || !slices.IsSortedFunc(dues, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("breaches due %v: want 10, earliest first", dues)
	}
	if m := openTotal(t, s); m != 12 {
		t.Errorf("%d open, want 12 (10 breached, 2 pending)", m)
	}
}

// testBreachFilters: Breaches filters by since, region, municipality,
// party and rule, newest first, with a limit.
func testBreachFilters(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	base := at("2026-05-04 08:00")
	type spec struct {
		municipality, region, version string
		party                         deadline.Party
		rule                          string
	}
	specs := []spec{
		{"kommune-0101", "region-1084", "2026-1", deadline.PartyMunicipality, "regel-a"},
		{"kommune-0101", "region-1084", "2026-1", deadline.PartyGateway, "regel-b"},
		{"kommune-0147", "region-1084", "2026-1", deadline.PartyMunicipality, "regel-b"},
		{"kommune-0751", "region-1082", "2025-1", deadline.PartyKliniskFunktion, "regel-a"},
		{"kommune-0751", "region-1082", "2025-1", deadline.PartyMunicipality, "regel-c"},
	}
	for i, sp := range specs {
		key := store.CaseKey{Municipality: sp.municipality, CaseID: "sag-" + uuid.NewString(), Region: sp.region, Agreement: sp.version}
		o := hourObligation(sp.rule+"/1", base.Add(time.Duration(i)*time.Hour))
		o.Party = sp.party
		must(t, s.RecordCase(ctx, key, creates(base.Add(-time.Hour), o)))
		// Each detected an hour apart: breached_at base+1h+i h.
		bs, err := s.DetectBreaches(ctx, base.Add(time.Duration(i+1)*time.Hour), 0, missedBy(t))
		must(t, err)
		if len(bs) != 1 {
			t.Fatalf("detection %d found %d", i, len(bs))
		}
	}
	idx := func(bs []store.Breach) []int { // positions in specs, by breached_at
		out := []int{}
		for _, b := range bs {
			out = append(out, int(b.BreachedAt.Sub(base.UTC())/time.Hour)-1)
		}
		return out
	}
	for name, c := range map[string]struct {
		f    store.BreachFilter
		want []int
	}{
		"all":             {store.BreachFilter{}, []int{4, 3, 2, 1, 0}},
		"since":           {store.BreachFilter{Since: base.Add(3 * time.Hour)}, []int{4, 3, 2}},
		"region":          {store.BreachFilter{Region: "region-1082"}, []int{4, 3}},
		"municipality":    {store.BreachFilter{Municipality: "kommune-0101"}, []int{1, 0}},
		"party":           {store.BreachFilter{Party: "municipality"}, []int{4, 2, 0}},
		"rule":            {store.BreachFilter{Rule: "regel-b"}, []int{2, 1}},
		"rule and region": {store.BreachFilter{Rule: "regel-a", Region: "region-1084"}, []int{0}},
		"limit":           {store.BreachFilter{Limit: 2}, []int{4, 3}},
		"since and party": {store.BreachFilter{Since: base.Add(2 * time.Hour), Party: "municipality"}, []int{4, 2}},
		"nothing":         {store.BreachFilter{Municipality: "kommune-9999"}, []int{}},
	} {
		bs, err := s.Breaches(ctx, c.f)
		must(t, err)
		if got := idx(bs); !slices.Equal(got, c.want) {
			t.Errorf("%s: breaches %v, want %v", name, got, c.want)
		}
	}
	bs, err := s.Breaches(ctx, store.BreachFilter{Region: "region-1082"})
	must(t, err)
	if len(bs) == 2 && (bs[0].Agreement != "2025-1" || bs[0].Party != "municipality" || bs[0].Rule != "regel-c") {
		t.Errorf("breach fields: %+v", bs[0])
	}
}

// testCaseTraceMeetingMoved: a moved meeting cancels the obligations that
// hang on it and re-plans them; the trace keeps both, and CasesByID finds
// every municipality's case with the ID.
func testCaseTraceMeetingMoved(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	set := agreements(t)
	a, _ := set.Version("region-1084", "2026-1")
	caseID := "sag-" + uuid.NewString()
	key := caseKey("kommune-0101", caseID, "2026-1")
	evs := []deadline.Event{
		{Type: deadline.EventMeetingSet, At: at("2026-03-02 10:00"), MeetingDate: day("2026-03-20"), BundleID: "b1"},
		{Type: deadline.EventMeetingSet, At: at("2026-03-05 10:00"), MeetingDate: day("2026-03-27"), BundleID: "b2"},
	}
	ref := &deadline.CaseState{}
	for _, e := range evs {
		must(t, s.RecordCase(ctx, key, steps(t, e)))
		if _, err := a.Step(ref, e); err != nil {
			t.Fatal(err)
		}
	}
	tr := trace(t, s, key)
	if g, w := asJSON(t, canon(tr.Obligations...)), asJSON(t, canon(ref.Obligations...)); g != w {
		t.Errorf("obligations\n got %s\nwant %s", g, w)
	}
	if len(tr.Obligations) != 6 || len(tr.Events) != 2 {
		t.Fatalf("%d obligations, %d events; want 6 and 2", len(tr.Obligations), len(tr.Events))
	}
	for _, rule := range []string{"materiale-foer-moedet", "sk-udtalelse-foer-moedet", "indstilling-efter-moedet"} {
		old, nu := obligation(t, tr, rule+"/1"), obligation(t, tr, rule+"/2")
		if old.Status != deadline.StatusCancelled || old.CancelReason != deadline.ReasonMeetingMoved || old.CancelledAt == nil {
			t.Errorf("%s/1: %s %q, want cancelled because the meeting moved", rule, old.Status, old.CancelReason)
		}
		if nu.Status != deadline.StatusPending || nu.Replaces != old.ID || nu.ReplannedFrom == nil || !nu.ReplannedFrom.Equal(old.Due) || !nu.Due.After(old.Due) {
			t.Errorf("%s/2: %+v does not re-plan %s", rule, nu, old.ID)
		}
	}
	if got := obligation(t, tr, "materiale-foer-moedet/2").Due; !got.Equal(at("2026-03-20 12:00")) {
		t.Errorf("materiale-foer-moedet/2 due %v", got)
	}
	if m, err := s.OpenObligationsByRule(ctx); err != nil || len(m) != 3 || m["materiale-foer-moedet"] != 1 {
		t.Errorf("OpenObligationsByRule = %v, %v; want one open per rule", m, err)
	}

	// The same case ID in another municipality.
	other := store.CaseKey{Municipality: "kommune-0147", CaseID: caseID, Region: "region-1082", Agreement: "2025-1"}
	must(t, s.RecordCase(ctx, other, steps(t, evs[0])))
	keys, err := s.CasesByID(ctx, caseID)
	if err != nil || !slices.Equal(keys, []store.CaseKey{key, other}) {
		t.Errorf("CasesByID = %v, %v; want %v", keys, err, []store.CaseKey{key, other})
	}
	if keys, err := s.CasesByID(ctx, "no-such-case"); err != nil || len(keys) != 0 {
		t.Errorf("CasesByID(unknown) = %v, %v", keys, err)
	}
	if _, err := s.CaseTrace(ctx, "kommune-0999", caseID); errs.KindOf(err) != errs.NotFound || errs.CodeOf(err) != "store.not_found" {
		t.Errorf("CaseTrace of another municipality: %v, want NotFound", err)
	}
}

// testOutbox: claim, lease, retry with backoff, done; a lease that runs out
// makes the notification claimable again (at-least-once delivery).
func testOutbox(t *testing.T, s DeadlineStore) {
	ctx := t.Context()
	base := at("2026-05-04 08:00")
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	must(t, s.RecordCase(ctx, key, creates(base.Add(-2*time.Hour),
		hourObligation("regel-a/1", base.Add(-time.Hour)), hourObligation("regel-b/1", base.Add(-time.Hour)),
		hourObligation("regel-c/1", base.Add(-time.Hour)))))
	now := base
	bs, err := s.DetectBreaches(ctx, now, 0, missedBy(t))
	must(t, err)
	if len(bs) != 3 {
		t.Fatalf("%d breaches, want 3", len(bs))
	}
	if ns, err := s.ClaimNotifications(ctx, now.Add(-time.Second), 10, time.Minute); err != nil || len(ns) != 0 {
		t.Errorf("claim before the breaches: %+v, %v", ns, err)
	}
	_, err = s.ClaimNotifications(ctx, now, 10, 0)
	wantKind(t, "ClaimNotifications without a lease", err, errs.Invalid, "store.invalid")

	lease := time.Minute
	ns, err := s.ClaimNotifications(ctx, now, 2, lease)
	must(t, err)
	if len(ns) != 2 {
		t.Fatalf("claimed %d, want 2 (the limit)", len(ns))
	}
	for i, n := range ns {
		var b store.Breach
		must(t, json.Unmarshal(n.Payload, &b))
		if n.Attempts != 1 || b.ID != n.BreachID || b.ID != bs[i].ID || !n.LeaseUntil.Equal(now.Add(lease)) || !n.Created.Equal(now) {
			t.Errorf("notification %d: %+v (payload breach %d), want breach %d, 1 attempt", i, n, b.ID, bs[i].ID)
		}
	}
	rest, err := s.ClaimNotifications(ctx, now, 10, lease)
	must(t, err)
	if len(rest) != 1 || rest[0].BreachID != bs[2].ID {
		t.Fatalf("second claim: %+v, want only the unleased one", rest)
	}
	if again, err := s.ClaimNotifications(ctx, now.Add(30*time.Second), 10, lease); err != nil || len(again) != 0 {
		t.Errorf("claim during the leases: %+v, %v", again, err)
	}

	n1, n2, n3 := ns[0], ns[1], rest[0]
	must(t, s.NotificationFailed(ctx, n1.ID, now.Add(time.Second), now.Add(5*time.Minute), "http 503"))
	must(t, s.NotificationDone(ctx, n2.ID, now.Add(time.Second)))
	must(t, s.NotificationDone(ctx, n2.ID, now.Add(2*time.Second)))                       // idempotent
	must(t, s.NotificationFailed(ctx, n2.ID, now.Add(3*time.Second), now, "late report")) // no effect: done

	// n3's lease runs out without a report: it is claimed again.
	got, err := s.ClaimNotifications(ctx, now.Add(lease), 10, lease)
	must(t, err)
	if len(got) != 1 || got[0].ID != n3.ID || got[0].Attempts != 2 {
		t.Fatalf("claim after n3's lease: %+v, want n3 on its 2nd attempt", got)
	}
	must(t, s.NotificationDone(ctx, n3.ID, now.Add(lease+time.Second)))

	// n1 after its backoff, with its last error.
	if got, err := s.ClaimNotifications(ctx, now.Add(5*time.Minute-time.Second), 10, lease); err != nil || len(got) != 0 {
		t.Errorf("claim before n1's next attempt: %+v, %v", got, err)
	}
	got, err = s.ClaimNotifications(ctx, now.Add(5*time.Minute), 10, lease)
	must(t, err)
	if len(got) != 1 || got[0].ID != n1.ID || got[0].Attempts != 2 || got[0].LastError != "http 503" {
		t.Fatalf("claim after n1's backoff: %+v", got)
	}
	long := strings.Repeat("é", 300) + "\x00"
	must(t, s.NotificationFailed(ctx, n1.ID, now.Add(5*time.Minute), now.Add(10*time.Minute), long))
	got, err = s.ClaimNotifications(ctx, now.Add(10*time.Minute), 10, lease)
	must(t, err)
	if len(got) != 1 || got[0].Attempts != 3 || len(got[0].LastError) > 200 || !strings.HasPrefix(long, got[0].LastError) || !validUTF8(got[0].LastError) {
		t.Fatalf("claim after the second failure: %+v", got)
	}
	must(t, s.NotificationDone(ctx, n1.ID, now.Add(10*time.Minute)))
	if got, err := s.ClaimNotifications(ctx, now.Add(24*time.Hour), 10, lease); err != nil || len(got) != 0 {
		t.Errorf("claim after all were delivered: %+v, %v", got, err)
	}

	wantKind(t, "NotificationDone(unknown)", s.NotificationDone(ctx, 1<<40, now), errs.NotFound, "store.not_found")
	wantKind(t, "NotificationFailed(unknown)", s.NotificationFailed(ctx, 1<<40, now, now, "x"), errs.NotFound, "store.not_found")
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func testDeadlineContextCanceled(t *testing.T, s DeadlineStore) {
	key := caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1")
	ev := steps(t, deadline.Event{Type: deadline.EventMeetingSet, At: at("2026-03-06 10:00"), MeetingDate: day("2026-03-10")})
	must(t, s.RecordCase(t.Context(), key, ev))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]error{}
	calls["RecordCase"] = s.RecordCase(ctx, caseKey("kommune-0101", "sag-"+uuid.NewString(), "2026-1"), ev)
	_, calls["DetectBreaches"] = s.DetectBreaches(ctx, at("2027-01-01 00:00"), 0, missedBy(t))
	_, calls["Breaches"] = s.Breaches(ctx, store.BreachFilter{})
	_, calls["CaseTrace"] = s.CaseTrace(ctx, key.Municipality, key.CaseID)
	_, calls["CasesByID"] = s.CasesByID(ctx, key.CaseID)
	_, calls["OpenObligationsByRule"] = s.OpenObligationsByRule(ctx)
	_, calls["ClaimNotifications"] = s.ClaimNotifications(ctx, at("2027-01-01 00:00"), 0, time.Minute)
	calls["NotificationDone"] = s.NotificationDone(ctx, 1, at("2027-01-01 00:00"))
	for name, err := range calls {
		if errs.KindOf(err) != errs.Unavailable || errs.CodeOf(err) != "store.unavailable" {
			t.Errorf("%s with a canceled context: %v, want Unavailable", name, err)
		}
	}
	if bs := allBreaches(t, s); len(bs) != 1 {
		t.Errorf("%d breaches after canceled calls, want the 1 planned past due", len(bs))
	}
}
