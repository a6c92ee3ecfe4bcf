package deadline

// This file is the planning engine: given a case's events and obligations
// and one new event, which obligations to create, close, breach, cancel and
// re-plan. It is pure: no database, no clock (time comes in with the events
// and as the "now" of Breaches), no I/O. The store persists events and
// obligations and calls it; docs/deadlines.md explains the semantics to the
// people who configure the agreements.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event is one thing the gateway observed about a case.
//
//   - bundle_received: a bundle was accepted (Purpose; BundleID; InReplyTo
//     for a reply). The bundle is available to its recipient from this moment,
//     so this is also "delivery available" and "referral received".
//   - bundle_pulled: a recipient fetched a bundle the first time (Purpose,
//     Function of the recipient, BundleID).
//   - bundle_acknowledged: a recipient acknowledged a bundle (Purpose,
//     Function, BundleID).
//   - gp_copy_sent: the gateway sent the copy of a bundle to the GP
//     (BundleID and Purpose of the copied bundle).
//   - gp_receipt_received: the GP's system returned its receipt for that copy
//     (BundleID and Purpose of the copied bundle).
//   - meeting_set: a bundle named the meeting date (MeetingDate); the same
//     date again changes nothing, another one re-plans (see Apply).
//   - case_withdrawn: the case was withdrawn.
type Event struct {
	ID          string // the caller's identifier, optional; copied into EventRef
	Type        EventType
	At          time.Time // when the gateway observed it
	Purpose     string    // the bundle's purpose
	Function    string    // the recipient's function (bundle_pulled, bundle_acknowledged)
	BundleID    string    // the bundle concerned
	InReplyTo   string    // for a reply bundle: the bundle it answers
	MeetingDate Date      // for meeting_set
}

// Validate checks the event's fields against the vocabulary.
func (e Event) Validate() error {
	if !slices.Contains(allEvents, e.Type) {
		return fmt.Errorf("deadline: unknown event type %q", e.Type)
	}
	if e.At.IsZero() {
		return fmt.Errorf("deadline: %s event without a time", e.Type)
	}
	switch e.Type {
	case EventBundleReceived, EventBundlePulled, EventBundleAcknowledged:
		if e.Purpose == "" {
			return fmt.Errorf("deadline: %s event without a purpose", e.Type)
		}
	case EventMeetingSet:
		if e.MeetingDate.IsZero() {
			return errors.New("deadline: meeting_set event without a meeting date")
		}
	}
	if e.Purpose != "" && !slices.Contains(purposes, e.Purpose) {
		return fmt.Errorf("deadline: %s event with unknown purpose %q", e.Type, e.Purpose)
	}
	if e.Function != "" {
		if e.Type != EventBundlePulled && e.Type != EventBundleAcknowledged {
			return fmt.Errorf("deadline: %s event with a recipient function", e.Type)
		}
		if !slices.Contains(functions, e.Function) {
			return fmt.Errorf("deadline: %s event with unknown function %q", e.Type, e.Function)
		}
	}
	return nil
}

func (e Event) normalized() Event {
	if !e.MeetingDate.IsZero() {
		e.MeetingDate = DateOf(e.MeetingDate, nil)
	}
	return e
}

// EventRef records which event created or satisfied an obligation.
type EventRef struct {
	ID       string
	Type     EventType
	BundleID string
	At       time.Time
}

func refOf(e Event) EventRef {
	return EventRef{ID: e.ID, Type: e.Type, BundleID: e.BundleID, At: e.At}
}

// is reports whether r refers to e: by ID when both have one, else by type,
// bundle and time.
func (r EventRef) is(e Event) bool {
	if r.ID != "" && e.ID != "" {
		return r.ID == e.ID
	}
	return r.Type == e.Type && r.BundleID == e.BundleID && r.At.Equal(e.At)
}

// Status is the state of an obligation.
type Status string

// The statuses. pending and breached are open (still waiting for the
// satisfying event); the others are final.
const (
	StatusPending   Status = "pending"   // not yet due, or due and not yet detected
	StatusMet       Status = "met"       // satisfied on time
	StatusMetLate   Status = "met_late"  // satisfied after the due time (a breach was reported)
	StatusBreached  Status = "breached"  // past due and not satisfied yet
	StatusCancelled Status = "cancelled" // the case was withdrawn or the meeting moved
)

// Open reports whether the obligation still waits for its satisfying event.
func (s Status) Open() bool { return s == StatusPending || s == StatusBreached }

// MissedBy is by how much a deadline was missed: working days for workday
// rules (at least 1 once late), hours rounded up to the next 0.1 hour (6
// minutes) for hour rules. Exactly one field is set.
type MissedBy struct {
	Workdays int
	Hours    float64
}

func (m MissedBy) String() string {
	switch {
	case m.Workdays == 1:
		return "1 working day"
	case m.Workdays != 0:
		return strconv.Itoa(m.Workdays) + " working days"
	case m.Hours == 1:
		return "1 hour"
	case m.Hours != 0:
		return strconv.FormatFloat(m.Hours, 'f', -1, 64) + " hours"
	}
	return ""
}

// Obligation is one deadline of one case: a rule applied to one anchor.
type Obligation struct {
	// ID is unique in the case: "<rule>/<n>", n counting the rule's
	// obligations in the case from 1.
	ID    string
	Rule  string
	Party Party
	Unit  Unit

	Anchor        EventType // the anchor's event type, or AnchorMeetingDate
	AnchorAt      time.Time // the anchor event's time; for meeting_date, 00:00 Europe/Copenhagen on the meeting day
	AnchorBundle  string    // the anchor event's bundle
	AnchorPurpose string    // the anchor event's purpose
	Meeting       Date      // for meeting_date anchors: the meeting it hangs on

	// Due is the last instant at which the obligation is met on time
	// (Europe/Copenhagen): satisfied at or before Due is met, after it is
	// late. For an end-of-day deadline it is 23:59:59.999999999.
	Due time.Time

	Status    Status
	CreatedAt time.Time // the time of the event that planned it
	CreatedBy EventRef

	SatisfiedAt *time.Time
	SatisfiedBy *EventRef
	// MissedBy is set once late: final for met_late, so far (at the time of
	// detection) for breached; Agreement.MissedBy gives it at any time.
	MissedBy *MissedBy
	// BreachedAt is when the breach was recorded (detection, or the late
	// event). It stays set when a breached obligation is later met late or
	// cancelled: the breach is part of the history.
	BreachedAt *time.Time

	CancelledAt  *time.Time
	CancelReason string

	// ReplannedFrom is the Due of the obligation this one replaces (the
	// meeting moved), and Replaces that obligation's ID.
	ReplannedFrom *time.Time
	Replaces      string
}

// ChangeKind is what a change does to an obligation.
type ChangeKind string

// The change kinds.
const (
	ChangeCreate ChangeKind = "create" // a new obligation (pending)
	ChangeClose  ChangeKind = "close"  // satisfied: met or met_late
	ChangeBreach ChangeKind = "breach" // a breach to report: now breached, or met_late just now
	ChangeCancel ChangeKind = "cancel" // cancelled, with a reason
)

// Reasons carried by changes.
const (
	ReasonPlanned        = "planned"
	ReasonReplanned      = "re-planned: meeting moved"
	ReasonMet            = "met"
	ReasonMetLate        = "met late"
	ReasonSatisfiedLate  = "satisfied after the due time"
	ReasonPlannedPastDue = "already past due when planned"
	ReasonPastDue        = "past due"
	ReasonMeetingMoved   = "meeting moved"
	ReasonCaseWithdrawn  = "case withdrawn"
)

// Change is one step in an obligation's history. Obligation is its state
// after the change: a store upserts the obligations by ID in the order of
// the changes (one call may change one obligation more than once, e.g.
// create then close, or close then breach).
type Change struct {
	Kind       ChangeKind
	Obligation Obligation
	Reason     string
}

func (c Change) String() string {
	s := fmt.Sprintf("%s %s (%s, %s, due %s)", c.Kind, c.Obligation.ID, c.Obligation.Party, c.Obligation.Status, c.Obligation.Due.Format("2006-01-02 15:04"))
	if c.Obligation.MissedBy != nil && (c.Kind == ChangeBreach || c.Obligation.Status == StatusMetLate) {
		s += " missed by " + c.Obligation.MissedBy.String()
	}
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

// CaseState is what the engine knows of a case: its events in the order
// they were applied and its obligations. The current meeting and whether
// the case is withdrawn are derived from the events.
type CaseState struct {
	Events      []Event
	Obligations []Obligation
}

// Record appends e to the history and applies the changes Apply returned
// for it.
func (c *CaseState) Record(e Event, changes []Change) {
	c.Events = append(c.Events, e.normalized())
	c.Update(changes)
}

// Update applies changes (from Apply or Breaches): it upserts the
// obligations by ID, in order.
func (c *CaseState) Update(changes []Change) {
	for _, ch := range changes {
		if i := slices.IndexFunc(c.Obligations, func(o Obligation) bool { return o.ID == ch.Obligation.ID }); i >= 0 {
			c.Obligations[i] = ch.Obligation
		} else {
			c.Obligations = append(c.Obligations, ch.Obligation)
		}
	}
}

// Obligation returns the obligation with the given ID.
func (c *CaseState) Obligation(id string) (Obligation, bool) {
	for _, o := range c.Obligations {
		if o.ID == id {
			return o, true
		}
	}
	return Obligation{}, false
}

// Meeting returns the case's current meeting date.
func (c *CaseState) Meeting() (Date, bool) {
	st := replay(c.Events)
	return st.current, st.has
}

// Withdrawn reports whether the case was withdrawn.
func (c *CaseState) Withdrawn() bool { return replay(c.Events).withdrawn }

// meetingState is the case's meeting as the events so far define it.
type meetingState struct {
	has     bool
	current Date
	// roundStart: satisfying events before it belong to an earlier meeting
	// and are not used for this meeting's obligations.
	roundStart time.Time
	withdrawn  bool
}

type meetingDecision int

const (
	meetingIgnore   meetingDecision = iota // same date, a meeting already held, or a withdrawn case
	meetingNewRound                        // the first meeting, or a new one after the last was held
	meetingMoved                           // the planned meeting moved to another date
)

func (st meetingState) decide(e Event) meetingDecision {
	md := DateOf(e.MeetingDate, nil)
	today := DateOf(e.At, copenhagen())
	switch {
	case st.withdrawn:
		return meetingIgnore
	case st.has && md.Equal(st.current):
		return meetingIgnore
	case md.Before(today):
		// A bundle naming a meeting already held (an indstilling, say)
		// plans nothing.
		return meetingIgnore
	case !st.has || st.current.Before(today):
		return meetingNewRound
	}
	return meetingMoved
}

func (st meetingState) next(e Event) meetingState {
	switch e.Type {
	case EventCaseWithdrawn:
		st.withdrawn = true
	case EventMeetingSet:
		md := DateOf(e.MeetingDate, nil)
		switch st.decide(e) {
		case meetingNewRound:
			if st.has {
				d := st.current.AddDate(0, 0, 1)
				st.roundStart = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, copenhagen())
			}
			st.has, st.current = true, md
		case meetingMoved:
			st.current = md
		}
	}
	return st
}

func replay(events []Event) meetingState {
	var st meetingState
	for _, e := range events {
		st = st.next(e)
	}
	return st
}

// Due returns the due instant of rule r for an anchor: the anchor event's
// time, or for a meeting_date rule the meeting date (its calendar date is
// used). See docs/deadlines.md for the counting rules.
func (a *Agreement) Due(r *Rule, anchor time.Time) time.Time {
	c := a.cal
	if r.Unit == UnitHours {
		t := anchor.Add(r.Hours).In(copenhagen())
		if day := DateOf(t, copenhagen()); r.RollForward && !c.IsWorkday(day) {
			// Same clock time on the next working day.
			n := c.NextWorkday(day)
			t = time.Date(n.Year(), n.Month(), n.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), copenhagen())
		}
		return t
	}
	var day Date
	if r.Anchor.Event == AnchorMeetingDate {
		day = DateOf(anchor, nil)
	} else {
		day = DateOf(anchor, copenhagen())
	}
	day = c.AddWorkdays(day, r.Workdays)
	if r.RollForward {
		day = c.NextWorkday(day)
	}
	if h, m, ok := r.cutoff(); ok {
		return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, copenhagen())
	}
	return time.Date(day.Year(), day.Month(), day.Day(), 23, 59, 59, 999999999, copenhagen())
}

// MissedBy returns by how much o's deadline is missed at time at: zero when
// at is not after o.Due; else working days on the agreement's calendar
// after the due day up to and including at's day (at least 1), or for hour
// rules the hours late rounded up to 0.1 hour.
func (a *Agreement) MissedBy(o Obligation, at time.Time) MissedBy {
	if !at.After(o.Due) {
		return MissedBy{}
	}
	if o.Unit == UnitHours {
		const tenth = 6 * time.Minute
		late := at.Sub(o.Due)
		return MissedBy{Hours: float64((late+tenth-1)/tenth) / 10}
	}
	n := a.cal.Between(DateOf(o.Due, copenhagen()), DateOf(at, copenhagen()))
	return MissedBy{Workdays: max(n, 1)}
}

// Breaches returns a breach change for every pending obligation that is
// past due at now (now after Due; exactly at Due is still on time). It is
// the reference semantics of the detector's query — status = 'pending' AND
// due < now — and leaves breached, met and cancelled obligations alone.
// Each change carries the obligation as breached, with BreachedAt = now and
// MissedBy as of now.
func (a *Agreement) Breaches(obligations []Obligation, now time.Time) []Change {
	var out []Change
	for _, o := range obligations {
		if o.Status != StatusPending || !now.After(o.Due) {
			continue
		}
		at, mb := now, a.MissedBy(o, now)
		o.Status, o.BreachedAt, o.MissedBy = StatusBreached, &at, &mb
		out = append(out, Change{Kind: ChangeBreach, Obligation: o, Reason: ReasonPastDue})
	}
	return out
}

// Step applies e to c and records it: Apply followed by c.Record.
func (a *Agreement) Step(c *CaseState, e Event) ([]Change, error) {
	ch, err := a.Apply(c, e)
	if err != nil {
		return nil, err
	}
	c.Record(e, ch)
	return ch, nil
}

// Apply returns the changes a new event makes to the case's obligations.
// It does not modify c (call c.Record with the result, or use Step). It
// does not deduplicate: the caller applies each event once, in the order
// observed.
//
//   - A satisfying event closes, for each rule it satisfies, the open
//     obligation it concerns (the same bundle, or for a reply the bundle
//     answered; else the one due first): met when at or before Due, else
//     met_late with MissedBy, plus an immediate breach unless one was
//     already recorded.
//   - An anchoring event creates an obligation for each rule anchored on it.
//   - meeting_set for the first meeting, or a new meeting after the last
//     was held, creates the meeting_date obligations; a meeting already
//     planned for today or later that moves cancels its open meeting_date
//     obligations ("meeting moved") and creates their replacements with the
//     new due (ReplannedFrom, Replaces); met and met_late ones stay. Same
//     date again, or a date already past: nothing.
//   - A new meeting_date obligation is closed at once by a satisfying event
//     already in the history of this meeting (material that came before the
//     meeting date was known); one whose due has already passed, and that
//     nothing satisfies, is breached at once (attributed to its party).
//   - case_withdrawn cancels every open obligation; after it, events change
//     nothing.
func (a *Agreement) Apply(c *CaseState, e Event) ([]Change, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	e = e.normalized()
	st := replay(c.Events)
	if st.withdrawn {
		return nil, nil
	}
	p := &planner{a: a, history: c.Events, e: e, st: st, obs: slices.Clone(c.Obligations)}
	switch e.Type {
	case EventCaseWithdrawn:
		for i := range p.obs {
			if p.obs[i].Status.Open() {
				p.cancel(i, ReasonCaseWithdrawn)
			}
		}
	case EventMeetingSet:
		p.meeting()
	default:
		p.satisfy()
		for i := range a.Rules {
			r := &a.Rules[i]
			if r.Anchor.Event != AnchorMeetingDate && r.Anchor.Matches(e) {
				p.create(r, Obligation{Anchor: e.Type, AnchorAt: e.At, AnchorBundle: e.BundleID, AnchorPurpose: e.Purpose}, ReasonPlanned)
			}
		}
	}
	return p.out, nil
}

// planner computes one Apply on a working copy of the obligations.
type planner struct {
	a       *Agreement
	history []Event
	e       Event
	st      meetingState
	obs     []Obligation
	out     []Change
}

func (p *planner) emit(kind ChangeKind, i int, reason string) {
	p.out = append(p.out, Change{Kind: kind, Obligation: p.obs[i], Reason: reason})
}

func (p *planner) nextID(rule string) string {
	n := 0
	for _, o := range p.obs {
		if o.Rule != rule {
			continue
		}
		if k, err := strconv.Atoi(o.ID[strings.LastIndexByte(o.ID, '/')+1:]); err == nil && k > n {
			n = k
		}
	}
	return fmt.Sprintf("%s/%d", rule, n+1)
}

func (p *planner) meeting() {
	md := p.e.MeetingDate
	switch p.st.decide(p.e) {
	case meetingNewRound:
		p.st = p.st.next(p.e)
		for i := range p.a.Rules {
			if r := &p.a.Rules[i]; r.Anchor.Event == AnchorMeetingDate {
				p.create(r, meetingAnchor(md), ReasonPlanned)
			}
		}
	case meetingMoved:
		old := p.st.current
		p.st = p.st.next(p.e)
		n := len(p.obs)
		for i := 0; i < n; i++ {
			o := p.obs[i]
			if o.Anchor != AnchorMeetingDate || !o.Status.Open() || !o.Meeting.Equal(old) {
				continue
			}
			p.cancel(i, ReasonMeetingMoved)
			r, ok := p.a.Rule(o.Rule)
			if !ok {
				continue // planned under a rule this agreement does not have
			}
			next := meetingAnchor(md)
			from := o.Due
			next.ReplannedFrom, next.Replaces = &from, o.ID
			p.create(r, next, ReasonReplanned)
		}
	}
}

func meetingAnchor(md Date) Obligation {
	return Obligation{
		Anchor:   AnchorMeetingDate,
		AnchorAt: time.Date(md.Year(), md.Month(), md.Day(), 0, 0, 0, 0, copenhagen()),
		Meeting:  md,
	}
}

// create plans an obligation of rule r from the anchor fields in o.
func (p *planner) create(r *Rule, o Obligation, reason string) {
	o.ID = p.nextID(r.Name)
	o.Rule, o.Party, o.Unit = r.Name, r.Party, r.Unit
	o.Status = StatusPending
	o.CreatedAt, o.CreatedBy = p.e.At, refOf(p.e)
	if o.Anchor == AnchorMeetingDate {
		o.Due = p.a.Due(r, o.Meeting)
	} else {
		o.Due = p.a.Due(r, o.AnchorAt)
	}
	p.obs = append(p.obs, o)
	i := len(p.obs) - 1
	p.emit(ChangeCreate, i, reason)
	if o.Anchor == AnchorMeetingDate {
		for _, h := range p.history {
			if !h.At.Before(p.st.roundStart) && r.SatisfiedBy.Matches(h) && !p.consumed(r.Name, h) {
				p.close(i, h)
				return
			}
		}
	}
	if p.e.At.After(o.Due) {
		p.breach(i, ReasonPlannedPastDue)
	}
}

// consumed reports whether h already satisfied an obligation of the rule.
func (p *planner) consumed(rule string, h Event) bool {
	for _, o := range p.obs {
		if o.Rule == rule && o.SatisfiedBy != nil && o.SatisfiedBy.is(h) {
			return true
		}
	}
	return false
}

// satisfy closes, for each rule the event satisfies, one open obligation.
func (p *planner) satisfy() {
	for ri := range p.a.Rules {
		r := &p.a.Rules[ri]
		if !r.SatisfiedBy.Matches(p.e) {
			continue
		}
		best := -1
		for i, o := range p.obs {
			if o.Rule == r.Name && o.Status.Open() && concerns(o, p.e) && (best < 0 || o.Due.Before(p.obs[best].Due)) {
				best = i
			}
		}
		if best >= 0 {
			p.close(best, p.e)
		}
	}
}

// concerns reports whether e may satisfy o as far as bundles go: an event
// about the anchor's purpose must be about the anchor's bundle, a reply to
// the anchor's purpose must answer the anchor's bundle; otherwise (no
// bundle known, or unrelated purposes) any.
func concerns(o Obligation, e Event) bool {
	if o.AnchorBundle == "" {
		return true
	}
	switch {
	case e.Purpose == o.AnchorPurpose:
		return e.BundleID == "" || e.BundleID == o.AnchorBundle
	case e.Purpose != "" && repliesTo[e.Purpose] == o.AnchorPurpose:
		return e.InReplyTo == "" || e.InReplyTo == o.AnchorBundle
	}
	return true
}

func (p *planner) close(i int, by Event) {
	o := &p.obs[i]
	at, ref := by.At, refOf(by)
	o.SatisfiedAt, o.SatisfiedBy = &at, &ref
	if !by.At.After(o.Due) {
		o.Status = StatusMet
		p.emit(ChangeClose, i, ReasonMet)
		return
	}
	mb := p.a.MissedBy(*o, by.At)
	o.Status, o.MissedBy = StatusMetLate, &mb
	p.emit(ChangeClose, i, ReasonMetLate)
	if o.BreachedAt == nil {
		now := p.e.At
		o.BreachedAt = &now
		p.emit(ChangeBreach, i, ReasonSatisfiedLate)
	}
}

func (p *planner) breach(i int, reason string) {
	o := &p.obs[i]
	now := p.e.At
	mb := p.a.MissedBy(*o, now)
	o.Status, o.BreachedAt, o.MissedBy = StatusBreached, &now, &mb
	p.emit(ChangeBreach, i, reason)
}

func (p *planner) cancel(i int, reason string) {
	o := &p.obs[i]
	now := p.e.At
	o.Status, o.CancelledAt, o.CancelReason = StatusCancelled, &now, reason
	p.emit(ChangeCancel, i, reason)
}
