package deadline

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Copenhagen on any machine
)

// Rule names of the example agreement.
const (
	mat    = "materiale-foer-moedet"
	skPull = "sk-henter-materiale"
	skUdt  = "sk-udtalelse-foer-moedet"
	kfPull = "kf-henter-henvisning"
	kfAtt  = "kf-attest"
	indst  = "indstilling-efter-moedet"
	kopi   = "kopi-til-egen-laege"
	kvit   = "kvittering-fra-egen-laege"
)

var exampleSet = sync.OnceValues(func() (*Set, error) {
	return LoadFile("../../configs/agreements.example.yaml", LoadOptions{})
})

func exampleAgreement(t *testing.T, version string) *Agreement {
	t.Helper()
	set, err := exampleSet()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := set.Version("region-1084", version)
	if !ok {
		t.Fatalf("no version %s", version)
	}
	return a
}

// at parses "YYYY-MM-DD HH:MM[:SS]" in Europe/Copenhagen.
func at(s string) time.Time {
	layout := "2006-01-02 15:04"
	if len(s) == len("2006-01-02 15:04:05") {
		layout = "2006-01-02 15:04:05"
	}
	t, err := time.ParseInLocation(layout, s, copenhagen())
	if err != nil {
		panic(err)
	}
	return t
}

// dueAt parses a due time: "YYYY-MM-DD" is the end of that day.
func dueAt(s string) time.Time {
	if len(s) == len("2006-01-02") {
		t := d(s)
		return time.Date(t.Year(), t.Month(), t.Day(), 23, 59, 59, 999999999, copenhagen())
	}
	return at(s)
}

func meetingSet(when, date string) Event {
	return Event{Type: EventMeetingSet, At: at(when), MeetingDate: d(date)}
}

func received(when, purpose, bundle string) Event {
	return Event{Type: EventBundleReceived, At: at(when), Purpose: purpose, BundleID: bundle}
}

func reply(when, purpose, bundle, inReplyTo string) Event {
	return Event{Type: EventBundleReceived, At: at(when), Purpose: purpose, BundleID: bundle, InReplyTo: inReplyTo}
}

func pulled(when, purpose, function, bundle string) Event {
	return Event{Type: EventBundlePulled, At: at(when), Purpose: purpose, Function: function, BundleID: bundle}
}

func gpCopy(when, bundle string) Event {
	return Event{Type: EventGPCopySent, At: at(when), Purpose: PurposeIndstilling, BundleID: bundle}
}

func gpReceipt(when, bundle string) Event {
	return Event{Type: EventGPReceiptReceived, At: at(when), Purpose: PurposeIndstilling, BundleID: bundle}
}

func withdrawn(when string) Event { return Event{Type: EventCaseWithdrawn, At: at(when)} }

// detect is not an event: the scenario runner runs Breaches at its time.
func detect(when string) Event { return Event{Type: "detect", At: at(when)} }

type obWant struct {
	id       string
	status   Status // "absent": no such obligation
	due      string
	missed   string // MissedBy.String()
	cancel   string // CancelReason
	from     string // ReplannedFrom
	replaces string
	breached bool // BreachedAt set (a breach in its history)
}

type scenario struct {
	name       string
	version    string // of region-1084; "" = 2026-1
	events     []Event
	want       []obWant
	breaches   []string // every breach reported, in order: "<id> <party> <missed by>"
	lastNoop   bool     // the last event changes nothing
	lastReason string   // a reason the last event's changes include
}

func run(t *testing.T, a *Agreement, events []Event) (*CaseState, []string, []Change) {
	t.Helper()
	st := &CaseState{}
	var breaches []string
	var last []Change
	for _, e := range events {
		var ch []Change
		if e.Type == "detect" {
			ch = a.Breaches(st.Obligations, e.At)
			st.Update(ch)
		} else {
			var err error
			if ch, err = a.Step(st, e); err != nil {
				t.Fatalf("%s at %s: %v", e.Type, e.At, err)
			}
		}
		for _, c := range ch {
			if c.Kind == ChangeBreach {
				breaches = append(breaches, c.Obligation.ID+" "+string(c.Obligation.Party)+" "+c.Obligation.MissedBy.String())
			}
		}
		last = ch
	}
	return st, breaches, last
}

func TestApply(t *testing.T) {
	cases := []scenario{
		{
			name: "ok/material-on-time",
			events: []Event{
				meetingSet("2026-03-02 09:00", "2026-03-10"),
				received("2026-03-02 09:00", PurposeForberedelse, "F1"),
			},
			want: []obWant{
				{id: mat + "/1", status: StatusMet, due: "2026-03-03 12:00"},
				{id: skPull + "/1", status: StatusPending, due: "2026-03-03"},
				{id: skUdt + "/1", status: StatusPending, due: "2026-03-09"},
				{id: indst + "/1", status: StatusPending, due: "2026-03-17"},
			},
		},
		{
			// The meeting is in 2 hverdage, the rule says 5: a breach at
			// once, the municipality's, by 3 hverdage.
			name: "ok/material-too-late-meeting-set-first",
			events: []Event{
				meetingSet("2026-03-06 09:00", "2026-03-10"),
				received("2026-03-06 09:00", PurposeForberedelse, "F1"),
			},
			want:     []obWant{{id: mat + "/1", status: StatusMetLate, due: "2026-03-03 12:00", missed: "3 working days", breached: true}},
			breaches: []string{mat + "/1 municipality 3 working days"},
		},
		{
			name: "ok/material-too-late-bundle-first",
			events: []Event{
				received("2026-03-06 09:00", PurposeForberedelse, "F1"),
				meetingSet("2026-03-06 09:00", "2026-03-10"),
			},
			want:       []obWant{{id: mat + "/1", status: StatusMetLate, due: "2026-03-03 12:00", missed: "3 working days", breached: true}},
			breaches:   []string{mat + "/1 municipality 3 working days"},
			lastReason: ReasonSatisfiedLate,
		},
		{
			name: "ok/cutoff-11:59-on-the-due-day",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				received("2026-03-03 11:59", PurposeForberedelse, "F1"),
			},
			want: []obWant{{id: mat + "/1", status: StatusMet, due: "2026-03-03 12:00"}},
		},
		{
			name: "ok/cutoff-12:00:00-exactly-is-on-time",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				received("2026-03-03 12:00:00", PurposeForberedelse, "F1"),
			},
			want: []obWant{{id: mat + "/1", status: StatusMet, due: "2026-03-03 12:00"}},
		},
		{
			name: "ok/cutoff-12:01-on-the-due-day-is-late",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				received("2026-03-03 12:01", PurposeForberedelse, "F1"),
			},
			want:       []obWant{{id: mat + "/1", status: StatusMetLate, due: "2026-03-03 12:00", missed: "1 working day", breached: true}},
			breaches:   []string{mat + "/1 municipality 1 working day"},
			lastReason: ReasonSatisfiedLate,
		},
		{
			name: "ok/meeting-moved-replans-with-history",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				meetingSet("2026-02-25 10:00", "2026-03-17"),
			},
			want: []obWant{
				{id: mat + "/1", status: StatusCancelled, due: "2026-03-03 12:00", cancel: ReasonMeetingMoved},
				{id: mat + "/2", status: StatusPending, due: "2026-03-10 12:00", from: "2026-03-03 12:00", replaces: mat + "/1"},
				{id: skUdt + "/1", status: StatusCancelled, due: "2026-03-09", cancel: ReasonMeetingMoved},
				{id: skUdt + "/2", status: StatusPending, due: "2026-03-16", from: "2026-03-09", replaces: skUdt + "/1"},
				{id: indst + "/1", status: StatusCancelled, due: "2026-03-17", cancel: ReasonMeetingMoved},
				{id: indst + "/2", status: StatusPending, due: "2026-03-24", from: "2026-03-17", replaces: indst + "/1"},
			},
			lastReason: ReasonReplanned,
		},
		{
			name: "ok/meeting-moved-met-obligations-stay",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				received("2026-02-23 10:00", PurposeForberedelse, "F1"),
				pulled("2026-02-23 11:00", PurposeForberedelse, FunctionSundhedskoordinator, "F1"),
				meetingSet("2026-02-25 10:00", "2026-03-17"),
			},
			want: []obWant{
				{id: mat + "/1", status: StatusMet, due: "2026-03-03 12:00"},
				{id: mat + "/2", status: "absent"},
				{id: skPull + "/1", status: StatusMet, due: "2026-02-24"},
				{id: skUdt + "/2", status: StatusPending, due: "2026-03-16", from: "2026-03-09"},
			},
		},
		{
			// Moved earlier, so the material, not yet there, is late at once.
			name: "ok/meeting-moved-earlier-breach-at-once",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-17"),
				meetingSet("2026-03-09 10:00", "2026-03-12"),
			},
			want: []obWant{
				{id: mat + "/1", status: StatusCancelled, due: "2026-03-10 12:00", cancel: ReasonMeetingMoved},
				{id: mat + "/2", status: StatusBreached, due: "2026-03-05 12:00", from: "2026-03-10 12:00", missed: "2 working days", breached: true},
				{id: skUdt + "/2", status: StatusPending, due: "2026-03-11"},
			},
			breaches:   []string{mat + "/2 municipality 2 working days"},
			lastReason: ReasonPlannedPastDue,
		},
		{
			name: "ok/breached-then-meeting-moved-keeps-the-breach",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				detect("2026-03-04 08:00"),
				meetingSet("2026-03-05 10:00", "2026-03-24"),
			},
			want: []obWant{
				{id: mat + "/1", status: StatusCancelled, due: "2026-03-03 12:00", cancel: ReasonMeetingMoved, missed: "1 working day", breached: true},
				{id: mat + "/2", status: StatusPending, due: "2026-03-17 12:00", from: "2026-03-03 12:00"},
			},
			breaches: []string{mat + "/1 municipality 1 working day"},
		},
		{
			name: "ok/detected-then-met-late-one-breach",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				detect("2026-03-03 12:00"), // exactly at the due time: on time still
				detect("2026-03-03 12:00:01"),
				detect("2026-03-04 12:00"), // already breached: not again
				received("2026-03-05 10:00", PurposeForberedelse, "F1"),
			},
			want:     []obWant{{id: mat + "/1", status: StatusMetLate, due: "2026-03-03 12:00", missed: "2 working days", breached: true}},
			breaches: []string{mat + "/1 municipality 1 working day"},
		},
		{
			name: "ok/case-withdrawn-cancels-all-pending",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				received("2026-02-23 10:00", PurposeForberedelse, "F1"),
				received("2026-02-24 10:00", PurposeHenvisning, "H1"),
				withdrawn("2026-02-25 10:00"),
			},
			want: []obWant{
				{id: mat + "/1", status: StatusMet},
				{id: skPull + "/1", status: StatusCancelled, cancel: ReasonCaseWithdrawn},
				{id: skUdt + "/1", status: StatusCancelled, cancel: ReasonCaseWithdrawn},
				{id: indst + "/1", status: StatusCancelled, cancel: ReasonCaseWithdrawn},
				{id: kfPull + "/1", status: StatusCancelled, cancel: ReasonCaseWithdrawn},
				{id: kfAtt + "/1", status: StatusCancelled, cancel: ReasonCaseWithdrawn},
			},
			lastReason: ReasonCaseWithdrawn,
		},
		{
			name: "ok/after-withdrawal-nothing-changes",
			events: []Event{
				received("2026-02-24 10:00", PurposeHenvisning, "H1"),
				withdrawn("2026-02-25 10:00"),
				reply("2026-03-01 10:00", PurposeKlinikAttest, "A1", "H1"),
			},
			want:     []obWant{{id: kfAtt + "/1", status: StatusCancelled}},
			lastNoop: true,
		},
		{
			name: "ok/hour-rules-on-time",
			events: []Event{
				received("2026-03-12 10:00", PurposeIndstilling, "I1"),
				gpCopy("2026-03-12 10:30", "I1"),
				gpReceipt("2026-03-12 14:00", "I1"),
			},
			want: []obWant{
				{id: kopi + "/1", status: StatusMet, due: "2026-03-12 11:00"},
				{id: kvit + "/1", status: StatusMet, due: "2026-03-12 14:30"},
			},
		},
		{
			name: "ok/hour-rules-late-by-tenths-of-an-hour",
			events: []Event{
				received("2026-03-12 10:00", PurposeIndstilling, "I1"),
				gpCopy("2026-03-12 11:00:01", "I1"),
				gpReceipt("2026-03-12 16:30:01", "I1"),
			},
			want: []obWant{
				{id: kopi + "/1", status: StatusMetLate, due: "2026-03-12 11:00", missed: "0.1 hours", breached: true},
				{id: kvit + "/1", status: StatusMetLate, due: "2026-03-12 15:00:01", missed: "1.5 hours", breached: true},
			},
			breaches: []string{kopi + "/1 gateway 0.1 hours", kvit + "/1 gp-system 1.5 hours"},
		},
		{
			// 22:00 on 23 December + 4 hours is 02:00 on 24 December, a
			// closed day; the receipt rule rolls forward to the same time on
			// the next working day, Monday 28 December.
			name: "ok/hour-rule-rolls-over-christmas-2026",
			events: []Event{
				received("2026-12-23 21:00", PurposeIndstilling, "I1"),
				gpCopy("2026-12-23 22:00", "I1"),
				gpReceipt("2026-12-27 23:00", "I1"),
			},
			want: []obWant{
				{id: kopi + "/1", status: StatusMet, due: "2026-12-23 22:00"},
				{id: kvit + "/1", status: StatusMet, due: "2026-12-28 02:00"},
			},
		},
		{
			// The gateway's own rule does not roll forward (it runs every
			// day); the GP receipt does.
			name: "ok/hour-rules-on-a-saturday",
			events: []Event{
				received("2026-03-14 10:00", PurposeIndstilling, "I1"),
				gpCopy("2026-03-14 13:00", "I1"),
			},
			want: []obWant{
				{id: kopi + "/1", status: StatusMetLate, due: "2026-03-14 11:00", missed: "2 hours", breached: true},
				{id: kvit + "/1", status: StatusPending, due: "2026-03-16 17:00"},
			},
			breaches: []string{kopi + "/1 gateway 2 hours"},
		},
		{
			// Meeting Wednesday 8 April 2026: 5 hverdage back skips 2. påskedag,
			// Langfredag and Skærtorsdag.
			name:   "ok/easter-2026-before-the-meeting",
			events: []Event{meetingSet("2026-03-20 10:00", "2026-04-08")},
			want: []obWant{
				{id: mat + "/1", status: StatusPending, due: "2026-03-27 12:00"},
				{id: skUdt + "/1", status: StatusPending, due: "2026-04-07"},
				{id: indst + "/1", status: StatusPending, due: "2026-04-15"},
			},
		},
		{
			name: "ok/easter-2026-henvisning",
			events: []Event{
				received("2026-04-01 10:00", PurposeHenvisning, "H1"),
				pulled("2026-04-09 08:00", PurposeHenvisning, FunctionKliniskFunktion, "H1"),
				reply("2026-04-28 09:00", PurposeKlinikAttest, "A1", "H1"),
			},
			want: []obWant{
				{id: kfPull + "/1", status: StatusMetLate, due: "2026-04-08", missed: "1 working day", breached: true},
				{id: kfAtt + "/1", status: StatusMetLate, due: "2026-04-27", missed: "1 working day", breached: true},
			},
			breaches: []string{kfPull + "/1 klinisk-funktion 1 working day", kfAtt + "/1 klinisk-funktion 1 working day"},
		},
		{
			// Meeting Monday 4 January 2027: back over 1 January, 31, 25 and
			// 24 December.
			name:   "ok/christmas-2026-before-the-meeting",
			events: []Event{meetingSet("2026-12-01 10:00", "2027-01-04")},
			want: []obWant{
				{id: mat + "/1", status: StatusPending, due: "2026-12-22 12:00"},
				{id: skUdt + "/1", status: StatusPending, due: "2026-12-30"},
				{id: indst + "/1", status: StatusPending, due: "2027-01-11"},
			},
		},
		{
			name: "ok/christmas-2026-indstilling-late",
			events: []Event{
				meetingSet("2026-12-01 10:00", "2026-12-21"),
				received("2027-01-04 09:00", PurposeIndstilling, "I1"),
			},
			want:     []obWant{{id: indst + "/1", status: StatusMetLate, due: "2026-12-30", missed: "1 working day", breached: true}},
			breaches: []string{indst + "/1 municipality 1 working day"},
		},
		{
			name:    "ok/christmas-2025-attest-20-hverdage-version-2025",
			version: "2025-1",
			events:  []Event{received("2025-12-10 10:00", PurposeHenvisning, "H1")},
			want:    []obWant{{id: kfAtt + "/1", status: StatusPending, due: "2026-01-14"}},
		},
		{
			name:   "ok/same-henvisning-15-hverdage-version-2026",
			events: []Event{received("2025-12-10 10:00", PurposeHenvisning, "H1")},
			want:   []obWant{{id: kfAtt + "/1", status: StatusPending, due: "2026-01-07"}},
		},
		{
			name: "ok/new-meeting-after-the-held-one-is-a-new-round",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				received("2026-02-23 10:00", PurposeForberedelse, "F1"),
				reply("2026-03-06 10:00", PurposeSKUdtalelse, "U1", "F1"),
				received("2026-03-12 10:00", PurposeIndstilling, "I1"),
				meetingSet("2026-08-03 10:00", "2026-09-15"),
			},
			want: []obWant{
				{id: mat + "/1", status: StatusMet},
				{id: skUdt + "/1", status: StatusMet},
				{id: indst + "/1", status: StatusMet},
				{id: mat + "/2", status: StatusPending, due: "2026-09-08 12:00"},
				{id: skUdt + "/2", status: StatusPending, due: "2026-09-14"},
				{id: indst + "/2", status: StatusPending, due: "2026-09-22"},
			},
		},
		{
			name: "ok/a-bundle-naming-a-held-meeting-changes-nothing",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				meetingSet("2026-03-12 10:00", "2026-03-09"),
			},
			want:     []obWant{{id: mat + "/1", status: StatusPending}, {id: mat + "/2", status: "absent"}},
			lastNoop: true,
		},
		{
			name: "ok/the-same-meeting-again-changes-nothing",
			events: []Event{
				meetingSet("2026-02-20 10:00", "2026-03-10"),
				meetingSet("2026-02-27 10:00", "2026-03-10"),
			},
			want:     []obWant{{id: mat + "/2", status: "absent"}},
			lastNoop: true,
		},
		{
			name: "ok/events-close-the-obligation-of-their-own-bundle",
			events: []Event{
				received("2026-02-02 10:00", PurposeHenvisning, "H1"),
				received("2026-02-03 10:00", PurposeHenvisning, "H2"),
				pulled("2026-02-03 11:00", PurposeHenvisning, FunctionKliniskFunktion, "H2"),
				reply("2026-02-10 10:00", PurposeKlinikAttest, "A2", "H2"),
				pulled("2026-02-03 11:00", PurposeHenvisning, FunctionSundhedskoordinator, "H1"), // not klinisk funktion
			},
			want: []obWant{
				{id: kfPull + "/1", status: StatusPending, due: "2026-02-04"},
				{id: kfPull + "/2", status: StatusMet, due: "2026-02-05"},
				{id: kfAtt + "/1", status: StatusPending},
				{id: kfAtt + "/2", status: StatusMet},
			},
			lastNoop: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.version
			if v == "" {
				v = "2026-1"
			}
			a := exampleAgreement(t, v)
			st, breaches, last := run(t, a, tc.events)
			for _, w := range tc.want {
				o, ok := st.Obligation(w.id)
				if w.status == "absent" {
					if ok {
						t.Errorf("%s exists: %+v", w.id, o)
					}
					continue
				}
				if !ok {
					t.Errorf("%s missing; have %s", w.id, ids(st))
					continue
				}
				if o.Status != w.status {
					t.Errorf("%s: status %s, want %s", w.id, o.Status, w.status)
				}
				if w.due != "" && !o.Due.Equal(dueAt(w.due)) {
					t.Errorf("%s: due %s, want %s", w.id, o.Due, dueAt(w.due))
				}
				got := ""
				if o.MissedBy != nil {
					got = o.MissedBy.String()
				}
				if got != w.missed {
					t.Errorf("%s: missed by %q, want %q", w.id, got, w.missed)
				}
				if o.CancelReason != w.cancel && (w.cancel != "" || o.Status != StatusCancelled) {
					t.Errorf("%s: cancel reason %q, want %q", w.id, o.CancelReason, w.cancel)
				}
				if w.from != "" && (o.ReplannedFrom == nil || !o.ReplannedFrom.Equal(dueAt(w.from))) {
					t.Errorf("%s: replanned from %v, want %s", w.id, o.ReplannedFrom, w.from)
				}
				if w.replaces != "" && o.Replaces != w.replaces {
					t.Errorf("%s: replaces %q, want %q", w.id, o.Replaces, w.replaces)
				}
				if (o.BreachedAt != nil) != w.breached {
					t.Errorf("%s: breached at %v, want a breach: %v", w.id, o.BreachedAt, w.breached)
				}
				if (o.Status == StatusMet || o.Status == StatusMetLate) && (o.SatisfiedAt == nil || o.SatisfiedBy == nil) {
					t.Errorf("%s: closed without SatisfiedAt/By", w.id)
				}
			}
			if strings.Join(breaches, "; ") != strings.Join(tc.breaches, "; ") {
				t.Errorf("breaches:\n got %q\nwant %q", breaches, tc.breaches)
			}
			if tc.lastNoop && len(last) > 0 {
				t.Errorf("last event changed %v", last)
			}
			if tc.lastReason != "" && !hasReason(last, tc.lastReason) {
				t.Errorf("last changes %v lack reason %q", last, tc.lastReason)
			}
		})
	}
}

func ids(st *CaseState) string {
	var out []string
	for _, o := range st.Obligations {
		out = append(out, o.ID+"="+string(o.Status))
	}
	return strings.Join(out, " ")
}

func hasReason(ch []Change, reason string) bool {
	for _, c := range ch {
		if c.Reason == reason {
			return true
		}
	}
	return false
}

// TestApplyChangeSequence pins the changes of the "material already too
// late" event, the way the store will receive them.
func TestApplyChangeSequence(t *testing.T) {
	a := exampleAgreement(t, "2026-1")
	st := &CaseState{}
	if _, err := a.Step(st, received("2026-03-06 09:00", PurposeForberedelse, "F1")); err != nil {
		t.Fatal(err)
	}
	ch, err := a.Apply(st, meetingSet("2026-03-06 09:00", "2026-03-10"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range ch {
		got = append(got, string(c.Kind)+" "+c.Obligation.ID+" "+string(c.Obligation.Status))
	}
	want := []string{
		"create " + mat + "/1 pending", "close " + mat + "/1 met_late", "breach " + mat + "/1 met_late",
		"create " + skUdt + "/1 pending", "create " + indst + "/1 pending",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes\n got %q\nwant %q", got, want)
	}
	b := ch[2].Obligation
	if b.Party != PartyMunicipality || b.MissedBy == nil || *b.MissedBy != (MissedBy{Workdays: 3}) || b.SatisfiedBy.BundleID != "F1" || !b.BreachedAt.Equal(at("2026-03-06 09:00")) {
		t.Fatalf("breach %+v", b)
	}
	if s := ch[2].String(); !strings.Contains(s, "missed by 3 working days") || !strings.Contains(s, "municipality") {
		t.Errorf("String() = %q", s)
	}
}

// TestApplyIsPure: Apply does not modify the case state it is given.
func TestApplyIsPure(t *testing.T) {
	a := exampleAgreement(t, "2026-1")
	st, _, _ := run(t, a, []Event{
		meetingSet("2026-02-20 10:00", "2026-03-10"),
		received("2026-02-23 10:00", PurposeForberedelse, "F1"),
		received("2026-02-24 10:00", PurposeHenvisning, "H1"),
		detect("2026-03-10 08:00"),
	})
	before := deepCopy(st)
	for _, e := range []Event{
		meetingSet("2026-03-05 10:00", "2026-03-24"),
		withdrawn("2026-03-05 10:00"),
		pulled("2026-03-05 10:00", PurposeHenvisning, FunctionKliniskFunktion, "H1"),
	} {
		if _, err := a.Apply(st, e); err != nil {
			t.Fatal(err)
		}
		a.Breaches(st.Obligations, at("2027-01-01 00:00"))
		if !reflect.DeepEqual(before, st) {
			t.Fatalf("%s modified the state", e.Type)
		}
	}
}

func deepCopy(st *CaseState) *CaseState {
	c := &CaseState{Events: append([]Event(nil), st.Events...)}
	for _, o := range st.Obligations {
		cp := func(t *time.Time) *time.Time {
			if t == nil {
				return nil
			}
			v := *t
			return &v
		}
		o.SatisfiedAt, o.BreachedAt, o.CancelledAt, o.ReplannedFrom = cp(o.SatisfiedAt), cp(o.BreachedAt), cp(o.CancelledAt), cp(o.ReplannedFrom)
		if o.MissedBy != nil {
			m := *o.MissedBy
			o.MissedBy = &m
		}
		if o.SatisfiedBy != nil {
			r := *o.SatisfiedBy
			o.SatisfiedBy = &r
		}
		c.Obligations = append(c.Obligations, o)
	}
	return c
}

func TestApplyRejectsBadEvents(t *testing.T) {
	a := exampleAgreement(t, "2026-1")
	now := at("2026-03-02 10:00")
	for name, e := range map[string]Event{
		"fail/unknown-type":             {Type: "bundle_lost", At: now},
		"fail/no-time":                  {Type: EventBundleReceived, Purpose: PurposeHenvisning},
		"fail/meeting-without-date":     {Type: EventMeetingSet, At: now},
		"fail/received-without-purpose": {Type: EventBundleReceived, At: now},
		"fail/unknown-purpose":          {Type: EventBundleReceived, At: now, Purpose: "resume"},
		"fail/function-on-received":     {Type: EventBundleReceived, At: now, Purpose: PurposeHenvisning, Function: FunctionKliniskFunktion},
		"fail/unknown-function":         {Type: EventBundlePulled, At: now, Purpose: PurposeHenvisning, Function: "laege"},
	} {
		if _, err := a.Apply(&CaseState{}, e); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestBreaches(t *testing.T) {
	a := exampleAgreement(t, "2026-1")
	work := func(id, due string, s Status) Obligation {
		return Obligation{ID: id, Rule: mat, Party: PartyMunicipality, Unit: UnitWorkdays, Due: dueAt(due), Status: s}
	}
	hour := func(id, due string, s Status) Obligation {
		return Obligation{ID: id, Rule: kvit, Party: PartyGPSystem, Unit: UnitHours, Due: dueAt(due), Status: s}
	}
	cases := []struct {
		name string
		ob   Obligation
		now  string
		want string // "" = no breach, else MissedBy
	}{
		{"ok/pending-before-due", work("w", "2026-03-03 12:00", StatusPending), "2026-03-03 11:59:59", ""},
		{"ok/pending-exactly-at-due", work("w", "2026-03-03 12:00", StatusPending), "2026-03-03 12:00:00", ""},
		{"ok/pending-a-second-after-due", work("w", "2026-03-03 12:00", StatusPending), "2026-03-03 12:00:01", "1 working day"},
		{"ok/pending-over-easter", work("w", "2026-03-27 12:00", StatusPending), "2026-04-08 09:00", "5 working days"},
		{"ok/end-of-day-due-at-midnight", work("w", "2026-03-03", StatusPending), "2026-03-04 00:00:00", "1 working day"},
		{"ok/end-of-day-due-just-before-midnight", work("w", "2026-03-03", StatusPending), "2026-03-03 23:59:59", ""},
		{"ok/due-friday-now-saturday", work("w", "2026-03-13", StatusPending), "2026-03-14 10:00", "1 working day"},
		{"ok/due-friday-now-monday", work("w", "2026-03-13", StatusPending), "2026-03-16 10:00", "1 working day"},
		{"ok/due-friday-now-tuesday", work("w", "2026-03-13", StatusPending), "2026-03-17 10:00", "2 working days"},
		{"ok/hours-7-minutes-late", hour("h", "2026-03-12 14:30", StatusPending), "2026-03-12 14:37", "0.2 hours"},
		{"ok/hours-exactly-an-hour-late", hour("h", "2026-03-12 14:30", StatusPending), "2026-03-12 15:30", "1 hour"},
		{"ok/hours-before-due", hour("h", "2026-03-12 14:30", StatusPending), "2026-03-12 14:00", ""},
		{"ok/already-breached-not-again", work("w", "2026-03-03 12:00", StatusBreached), "2026-03-10 12:00", ""},
		{"ok/met-never", work("w", "2026-03-03 12:00", StatusMet), "2026-03-10 12:00", ""},
		{"ok/met-late-never", work("w", "2026-03-03 12:00", StatusMetLate), "2026-03-10 12:00", ""},
		{"ok/cancelled-never", work("w", "2026-03-03 12:00", StatusCancelled), "2026-03-10 12:00", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := at(tc.now)
			ch := a.Breaches([]Obligation{tc.ob}, now)
			if tc.want == "" {
				if len(ch) != 0 {
					t.Fatalf("breach %v", ch)
				}
				return
			}
			if len(ch) != 1 {
				t.Fatalf("got %d changes, want one breach", len(ch))
			}
			o := ch[0].Obligation
			if ch[0].Kind != ChangeBreach || ch[0].Reason != ReasonPastDue || o.Status != StatusBreached || !o.BreachedAt.Equal(now) ||
				o.MissedBy.String() != tc.want || o.Party != tc.ob.Party {
				t.Fatalf("got %v (missed by %s), want breach missed by %s", ch[0], o.MissedBy, tc.want)
			}
			// The query the detector runs: status = 'pending' AND due < now.
			if !(tc.ob.Status == StatusPending && tc.ob.Due.Before(now)) {
				t.Fatal("differs from the detector's query")
			}
		})
	}
}

func TestDue(t *testing.T) {
	set, err := Load(strings.NewReader(`agreements:
  - region: region-1084
    version: "1"
    effective_from: 2025-01-01
    calendar:
      closed: [{from: 2026-07-13, to: 2026-07-24, name: Sommerlukning}]
    rules:
      - {name: same-day, party: municipality, anchor: meeting_date, workdays: 0, satisfied_by: {event: bundle_received, purpose: forberedelse}}
      - {name: same-day-no-roll, party: municipality, anchor: meeting_date, workdays: 0, roll_forward: false, satisfied_by: {event: bundle_received, purpose: forberedelse}}
      - {name: next-day-0900, party: sundhedskoordinator, anchor: {event: bundle_received, purpose: forberedelse}, workdays: 1, cutoff: "09:00", satisfied_by: {event: bundle_pulled, purpose: forberedelse}}
      - {name: four-hours-raw, party: gp-system, anchor: gp_copy_sent, hours: 4, roll_forward: false, satisfied_by: gp_receipt_received}
      - {name: four-hours, party: gp-system, anchor: gp_copy_sent, hours: 4, satisfied_by: gp_receipt_received}
      - {name: half-hour, party: gateway, anchor: {event: bundle_received, purpose: indstilling}, hours: 0.5, satisfied_by: gp_copy_sent}
`), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := set.Version("region-1084", "1")
	cases := []struct {
		name, rule string
		anchor     time.Time
		want       string
	}{
		{"ok/meeting-on-a-saturday-rolls-to-monday", "same-day", d("2026-03-14"), "2026-03-16"},
		{"ok/meeting-on-a-saturday-no-roll", "same-day-no-roll", d("2026-03-14"), "2026-03-14"},
		{"ok/meeting-on-a-working-day", "same-day", d("2026-03-12"), "2026-03-12"},
		{"ok/cutoff-09:00-next-day", "next-day-0900", at("2026-03-12 16:00"), "2026-03-13 09:00"},
		{"ok/anchor-on-a-sunday-counts-from-monday", "next-day-0900", at("2026-03-15 10:00"), "2026-03-16 09:00"},
		{"ok/anchor-late-evening-utc-is-next-day-in-copenhagen()", "next-day-0900", time.Date(2026, 3, 12, 23, 30, 0, 0, time.UTC), "2026-03-16 09:00"},
		{"ok/over-the-agreement's-summer-closure", "next-day-0900", at("2026-07-10 10:00"), "2026-07-27 09:00"},
		// Hours are elapsed time: over the switch to summer time (02:00 ->
		// 03:00 on 29 March 2026) 4 hours from 23:30 is 04:30.
		{"ok/hours-over-dst", "four-hours-raw", at("2026-03-28 23:30"), "2026-03-29 04:30"},
		{"ok/hours-over-dst-rolls-forward-from-sunday", "four-hours", at("2026-03-28 23:30"), "2026-03-30 04:30"},
		{"ok/hours-friday-evening-no-roll-needed", "four-hours", at("2026-03-13 18:00"), "2026-03-13 22:00"},
		{"ok/hours-friday-night-rolls-to-monday", "four-hours", at("2026-03-13 22:30"), "2026-03-16 02:30"},
		{"ok/hours-into-easter-2026", "four-hours", at("2026-04-01 22:00"), "2026-04-07 02:00"},
		{"ok/half-an-hour", "half-hour", at("2026-03-12 10:00"), "2026-03-12 10:30"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := a.Rule(tc.rule)
			if !ok {
				t.Fatalf("no rule %s", tc.rule)
			}
			if got := a.Due(r, tc.anchor); !got.Equal(dueAt(tc.want)) {
				t.Fatalf("Due = %s, want %s", got, dueAt(tc.want))
			}
		})
	}
}

func TestCaseStateMeeting(t *testing.T) {
	a := exampleAgreement(t, "2026-1")
	st, _, _ := run(t, a, []Event{
		meetingSet("2026-02-20 10:00", "2026-03-10"),
		meetingSet("2026-02-25 10:00", "2026-03-17"),
		meetingSet("2026-03-20 10:00", "2026-03-10"), // a held meeting: ignored
	})
	if m, ok := st.Meeting(); !ok || !m.Equal(d("2026-03-17")) || st.Withdrawn() {
		t.Fatalf("meeting %s %v, withdrawn %v", m, ok, st.Withdrawn())
	}
	if _, err := a.Step(st, withdrawn("2026-03-21 10:00")); err != nil || !st.Withdrawn() {
		t.Fatalf("withdrawn: %v", err)
	}
}
