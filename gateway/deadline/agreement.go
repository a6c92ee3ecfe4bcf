package deadline

// This file is the configuration side of the deadlines: the agreements
// (samarbejdsaftaler) of each region, in versions with an effective-from
// date, each a list of rules. docs/deadlines.md is the guide for the people
// who write them; configs/agreements.example.yaml is an example, not any
// region's real agreement.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// copenhagen is the time zone in which the days, cut-off times and closed
// days of the Danish process are read. It is loaded on first use, not at
// package initialisation: package time/tzdata, which the binaries embed (see
// cmd/), registers itself in its own init, which may run after this
// package's. Loading only fails in a broken build.
var copenhagen = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		panic(fmt.Sprintf("deadline: time zone Europe/Copenhagen: %v", err))
	}
	return loc
})

// Zone returns Europe/Copenhagen, the zone in which deadlines are read.
func Zone() *time.Location { return copenhagen() }

// Party is who must act for an obligation to be met; a breach is attributed
// to it.
type Party string

// The parties.
const (
	PartyMunicipality        Party = "municipality"        // the kommune (its jobcenter)
	PartySundhedskoordinator Party = "sundhedskoordinator" // the region's sundhedskoordinator function
	PartyKliniskFunktion     Party = "klinisk-funktion"    // the region's klinisk funktion
	PartyGPSystem            Party = "gp-system"           // the GP's (egen læge's) system, which returns receipts
	PartyGateway             Party = "gateway"             // the gateway itself (e.g. forwarding a copy to the GP)
)

var parties = []Party{PartyMunicipality, PartySundhedskoordinator, PartyKliniskFunktion, PartyGPSystem, PartyGateway}

// EventType is one of the things the gateway observes about a case. The
// vocabulary is closed; see Event for what each carries.
type EventType string

// The event types.
const (
	EventBundleReceived     EventType = "bundle_received"     // a bundle was accepted; it is available to its recipient from this moment
	EventBundlePulled       EventType = "bundle_pulled"       // a recipient fetched a bundle for the first time
	EventBundleAcknowledged EventType = "bundle_acknowledged" // a recipient acknowledged a bundle
	EventGPCopySent         EventType = "gp_copy_sent"        // the gateway sent the copy of a bundle to the GP
	EventGPReceiptReceived  EventType = "gp_receipt_received" // the GP's system returned its receipt for that copy
	EventMeetingSet         EventType = "meeting_set"         // a bundle named the meeting date, or a new one
	EventCaseWithdrawn      EventType = "case_withdrawn"      // the case was withdrawn
)

// AnchorMeetingDate is the anchor of rules counted from the rehabilitation
// team's meeting date. It is not an event: the date comes from meeting_set.
const AnchorMeetingDate EventType = "meeting_date"

// The events a rule may be anchored on, and the events that may satisfy a
// rule. meeting_set and case_withdrawn are neither: the meeting is anchored
// through meeting_date, and a withdrawal cancels obligations.
var (
	anchorEvents    = []EventType{AnchorMeetingDate, EventBundleReceived, EventBundlePulled, EventBundleAcknowledged, EventGPCopySent, EventGPReceiptReceived}
	satisfierEvents = []EventType{EventBundleReceived, EventBundlePulled, EventBundleAcknowledged, EventGPCopySent, EventGPReceiptReceived}
	allEvents       = []EventType{EventBundleReceived, EventBundlePulled, EventBundleAcknowledged, EventGPCopySent, EventGPReceiptReceived, EventMeetingSet, EventCaseWithdrawn}
)

// The purposes of bundles, as in package bundle (the tests check that the
// lists agree; this package does not import bundle so that bundle may use it).
const (
	PurposeForberedelse = "forberedelse"
	PurposeIndstilling  = "indstilling"
	PurposeHenvisning   = "henvisning"
	PurposeSKUdtalelse  = "sundhedskoordinator-udtalelse"
	PurposeKlinikAttest = "klinisk-funktion-attest"
)

var purposes = []string{PurposeForberedelse, PurposeIndstilling, PurposeHenvisning, PurposeSKUdtalelse, PurposeKlinikAttest}

// repliesTo maps a reply purpose to the purpose it answers (bundle.Spec.RepliesTo).
var repliesTo = map[string]string{PurposeSKUdtalelse: PurposeForberedelse, PurposeKlinikAttest: PurposeHenvisning}

// gpPurposes are the purposes a copy of which goes to the GP (bundle.Spec.NeedsGP).
var gpPurposes = []string{PurposeIndstilling, PurposeKlinikAttest}

// The recipient functions of bundle_pulled and bundle_acknowledged: the
// region's two functions (registry.FunctionSundhedskoordinator and
// registry.FunctionKliniskFunktion) and the municipality, which receives the
// replies.
const (
	FunctionSundhedskoordinator = "sundhedskoordinator"
	FunctionKliniskFunktion     = "klinisk-funktion"
	FunctionKommune             = "kommune"
)

var functions = []string{FunctionSundhedskoordinator, FunctionKliniskFunktion, FunctionKommune}

// EventSpec selects events: a type, and optionally a purpose and a recipient
// function. It is a rule's anchor (Event may then be AnchorMeetingDate) and
// what satisfies it.
type EventSpec struct {
	Event    EventType
	Purpose  string // "" = any purpose
	Function string // "" = any recipient; only for bundle_pulled and bundle_acknowledged
}

// Matches reports whether e is selected by s.
func (s EventSpec) Matches(e Event) bool {
	return e.Type == s.Event &&
		(s.Purpose == "" || e.Purpose == s.Purpose) &&
		(s.Function == "" || e.Function == s.Function)
}

func (s EventSpec) String() string {
	out := string(s.Event)
	if s.Purpose != "" {
		out += " purpose=" + s.Purpose
	}
	if s.Function != "" {
		out += " function=" + s.Function
	}
	return out
}

// Unit is how a rule's offset is counted.
type Unit string

// The units.
const (
	UnitWorkdays Unit = "workdays" // hverdage on the agreement's calendar
	UnitHours    Unit = "hours"    // wall-clock hours (not working hours)
)

// Rule is one deadline of an agreement.
type Rule struct {
	Name        string // unique in the agreement, [a-z0-9-]+
	Description string
	Party       Party     // who must act
	Anchor      EventSpec // Event may be AnchorMeetingDate
	Unit        Unit
	// Workdays is the offset in hverdage when Unit is UnitWorkdays:
	// positive = after the anchor, negative = before it (only for the
	// meeting_date anchor), 0 = the anchor day itself.
	Workdays int
	// Hours is the offset when Unit is UnitHours: elapsed wall-clock time
	// after the anchor event, always > 0.
	Hours time.Duration
	// Cutoff is the time of day ("HH:MM", Europe/Copenhagen) on the due day;
	// "" means the end of the day. Hour rules have none.
	Cutoff string
	// RollForward moves a due day that is not a working day to the next
	// working day (default true). It only matters for hour rules and for
	// workdays: 0 (see docs/deadlines.md).
	RollForward bool
	SatisfiedBy EventSpec
	Line        int // line of the rule in its file
}

// cutoff returns the cut-off as hour and minute; ok is false for the end of
// the day (no or an invalid Cutoff: Load rejects invalid ones).
func (r *Rule) cutoff() (h, m int, ok bool) {
	c := reCutoff.FindStringSubmatch(r.Cutoff)
	if c == nil {
		return 0, 0, false
	}
	h, _ = strconv.Atoi(c[1])
	m, _ = strconv.Atoi(c[2])
	return h, m, true
}

// Agreement is one version of a region's samarbejdsaftale.
type Agreement struct {
	Region        string // registry ID, e.g. region-1084
	Version       string // unique per region
	EffectiveFrom Date   // in force from 00:00 Europe/Copenhagen on this day
	// InForceUntil is the EffectiveFrom of the region's next version (the
	// first day this one is no longer in force); zero when it is the latest.
	InForceUntil Date
	Example      bool   // an example agreement, not a region's real figures
	Title        string // free text
	Source       string // free text: where the figures come from (the agreement's title and date)
	// CalendarConfig is the agreement's calendar: the extra closed days on
	// top of weekends and public holidays.
	CalendarConfig CalendarConfig
	Rules          []Rule
	Line           int // line of the agreement in its file

	cal *Calendar
}

// Calendar returns the agreement's working-day calendar.
func (a *Agreement) Calendar() *Calendar { return a.cal }

// Rule returns the rule with the given name.
func (a *Agreement) Rule(name string) (*Rule, bool) {
	for i := range a.Rules {
		if a.Rules[i].Name == name {
			return &a.Rules[i], true
		}
	}
	return nil, false
}

// Key identifies the agreement: "<region>@<version>".
func (a *Agreement) Key() string { return a.Region + "@" + a.Version }

// Set is a loaded, validated set of agreements. It is immutable and safe for
// concurrent use.
type Set struct {
	byRegion map[string][]*Agreement // sorted by EffectiveFrom
}

// InForce returns the region's agreement in force at the instant at (read
// as a day in Europe/Copenhagen): the latest version whose effective_from is
// on or before that day. A case uses the agreement in force when its first
// bundle arrived; pass that time. false when the region has no agreement in
// force on that day.
func (s *Set) InForce(region string, at time.Time) (*Agreement, bool) {
	day := DateOf(at, copenhagen())
	var found *Agreement
	for _, a := range s.byRegion[region] {
		if a.EffectiveFrom.After(day) {
			break
		}
		found = a
	}
	return found, found != nil
}

// Version returns a region's agreement by its version: how a case finds the
// agreement it was planned under once it has recorded it.
func (s *Set) Version(region, version string) (*Agreement, bool) {
	for _, a := range s.byRegion[region] {
		if a.Version == version {
			return a, true
		}
	}
	return nil, false
}

// Regions lists the regions with at least one agreement, sorted.
func (s *Set) Regions() []string {
	out := make([]string, 0, len(s.byRegion))
	for r := range s.byRegion {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Agreements lists every agreement, by region and then effective date.
func (s *Set) Agreements() []*Agreement {
	var out []*Agreement
	for _, r := range s.Regions() {
		out = append(out, s.byRegion[r]...)
	}
	return out
}

// HasExamples reports whether any agreement is marked example: true. A
// production deployment should refuse to start with such a set.
func (s *Set) HasExamples() bool {
	for _, a := range s.Agreements() {
		if a.Example {
			return true
		}
	}
	return false
}

// Problem is one configuration error.
type Problem struct {
	Line int // 0 when the problem has no line
	Msg  string
}

// LoadError lists every problem found in an agreements file.
type LoadError struct {
	Filename string
	Problems []Problem
}

func (e *LoadError) Error() string {
	name := e.Filename
	if name == "" {
		name = "agreements"
	}
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", name, p.Line, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", name, p.Msg)
		}
	}
	return b.String()
}

// LoadOptions tune Load.
type LoadOptions struct {
	// Filename is used in messages.
	Filename string
	// KnownRegion, when set, must accept every region ID (pass a function
	// backed by the organisation registry). Without it only the form
	// region-NNNN is checked.
	KnownRegion func(id string) bool
}

// maxFileSize bounds what Load reads.
const maxFileSize = 1 << 20

// Limits on offsets: beyond them a figure is a typing error, not an
// agreement. Longer deadlines than two weeks are counted in workdays.
const (
	maxWorkdays    = 260     // about a working year
	maxOffsetHours = 24 * 14 // two weeks
)

// LoadFile loads an agreements file; opts.Filename defaults to path.
func LoadFile(path string, opts LoadOptions) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if opts.Filename == "" {
		opts.Filename = path
	}
	return Load(f, opts)
}

// Load reads and validates an agreements file. The YAML is read strictly:
// unknown and duplicate keys, wrong types, unknown anchors, events,
// purposes, functions and parties, bad cut-off times, negative or zero hour
// offsets, rules with both or neither offset, negative working-day offsets
// on anything but the meeting date, duplicate rule names, rules that can
// never be satisfied after their anchor, bad calendars and overlapping
// versions are all errors naming their line. Every problem found is
// reported, in a *LoadError. An empty file is an empty set.
func Load(r io.Reader, opts LoadOptions) (*Set, error) {
	fail := func(line int, format string, args ...any) error {
		return &LoadError{Filename: opts.Filename, Problems: []Problem{{line, fmt.Sprintf(format, args...)}}}
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("agreements: read: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fail(0, "file larger than %d bytes", maxFileSize)
	}
	set := &Set{byRegion: map[string][]*Agreement{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return set, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) { // only comments
			return set, nil
		}
		return nil, fail(0, "%v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, fail(extra.Line, "more than one YAML document")
		}
		return nil, fail(0, "%v", err)
	}
	p := &parser{}
	agreements := p.file(&root)
	p.checkSet(agreements, opts)
	if len(p.probs) > 0 {
		slices.SortStableFunc(p.probs, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &LoadError{Filename: opts.Filename, Problems: p.probs}
	}
	for _, a := range agreements {
		set.byRegion[a.Region] = append(set.byRegion[a.Region], a)
	}
	for _, list := range set.byRegion {
		slices.SortFunc(list, func(a, b *Agreement) int { return a.EffectiveFrom.Compare(b.EffectiveFrom) })
		for i := 0; i+1 < len(list); i++ {
			list[i].InForceUntil = list[i+1].EffectiveFrom
		}
	}
	return set, nil
}

// parser walks the YAML node tree, collecting problems with their lines.
type parser struct {
	probs []Problem
}

func (p *parser) errf(line int, format string, args ...any) {
	p.probs = append(p.probs, Problem{line, fmt.Sprintf(format, args...)})
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// fields checks that n is a mapping with only the allowed keys, no key
// twice and every required key, and returns the values by key.
func (p *parser) fields(n *yaml.Node, what string, allowed, required []string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errf(n.Line, "%s: want a mapping (key: value lines)", what)
		return nil
	}
	out := map[string]*yaml.Node{}
	keyLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k.Line, "%s: keys must be plain words", what)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			p.errf(k.Line, "%s: unknown key %q (allowed: %s)", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		if l, dup := keyLine[k.Value]; dup {
			p.errf(k.Line, "%s: key %q given twice (first on line %d)", what, k.Value, l)
			continue
		}
		keyLine[k.Value] = k.Line
		out[k.Value] = v
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			p.errf(n.Line, "%s: missing key %q", what, r)
		}
	}
	return out
}

// peek returns the scalar value of key in mapping n, for messages.
func peek(n *yaml.Node, key string) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := deref(n.Content[i]), deref(n.Content[i+1]); k.Value == key && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

func (p *parser) scalar(n *yaml.Node, what string) (*yaml.Node, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errf(n.Line, "%s: want a single value", what)
		return n, false
	}
	return n, true
}

func (p *parser) str(n *yaml.Node, what string) (string, int, bool) {
	s, ok := p.scalar(n, what)
	return s.Value, s.Line, ok
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	s, ok := p.scalar(n, what)
	if !ok {
		return false, false
	}
	if s.Tag != "!!bool" {
		p.errf(s.Line, "%s: want true or false, not %q", what, s.Value)
		return false, false
	}
	return s.Value == "true" || s.Value == "True" || s.Value == "TRUE", true
}

func (p *parser) integer(n *yaml.Node, what string) (int, bool) {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s.Value)
	if s.Tag != "!!int" || err != nil {
		p.errf(s.Line, "%s: want a whole number, not %q", what, s.Value)
		return 0, false
	}
	return v, true
}

func (p *parser) number(n *yaml.Node, what string) (float64, bool) {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s.Value, 64)
	if (s.Tag != "!!int" && s.Tag != "!!float") || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errf(s.Line, "%s: want a number, not %q", what, s.Value)
		return 0, false
	}
	return v, true
}

func (p *parser) date(n *yaml.Node, what string) (Date, bool) {
	s, line, ok := p.str(n, what)
	if !ok {
		return Date{}, false
	}
	d, err := ParseDate(s)
	if err != nil {
		p.errf(line, "%s: %v", what, err)
		return Date{}, false
	}
	return d, true
}

var (
	reRegion   = regexp.MustCompile(`^region-[0-9]{4}$`)
	reVersion  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	reRuleName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	reCutoff   = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)
)

// reformStart: no agreement can take effect before the rehabilitation teams
// existed.
var reformStart = time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC)

func (p *parser) file(root *yaml.Node) []*Agreement {
	doc := root
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	top := p.fields(doc, "file", []string{"agreements"}, []string{"agreements"})
	list := top["agreements"]
	if list == nil {
		return nil
	}
	list = deref(list)
	if list.Kind != yaml.SequenceNode {
		p.errf(list.Line, "agreements: want a list of agreements (lines starting with -)")
		return nil
	}
	var out []*Agreement
	for _, n := range list.Content {
		if a := p.agreement(n); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (p *parser) agreement(n *yaml.Node) *Agreement {
	n = deref(n)
	a := &Agreement{Line: n.Line}
	what := "agreement"
	if r, v := peek(n, "region"), peek(n, "version"); r != "" && v != "" {
		what = "agreement " + r + "@" + v
	}
	f := p.fields(n, what, []string{"region", "version", "effective_from", "example", "title", "source", "calendar", "rules"},
		[]string{"region", "version", "effective_from", "rules"})
	if f == nil {
		return nil
	}
	before := len(p.probs)
	if v := f["region"]; v != nil {
		if s, line, ok := p.str(v, "region"); ok {
			if !reRegion.MatchString(s) {
				p.errf(line, "%s: region %q: want a region ID of the registry, e.g. region-1084", what, s)
			}
			a.Region = s
		}
	}
	if v := f["version"]; v != nil {
		if s, line, ok := p.str(v, "version"); ok {
			if !reVersion.MatchString(s) {
				p.errf(line, "%s: version %q: want letters, digits, '.', '_' or '-' (at most 64)", what, s)
			}
			a.Version = s
		}
	}
	if v := f["effective_from"]; v != nil {
		if d, ok := p.date(v, what+": effective_from"); ok {
			if d.Before(reformStart) {
				p.errf(deref(v).Line, "%s: effective_from %s is before the rehabilitation teams existed (2013-01-01)", what, d.Format(time.DateOnly))
			}
			a.EffectiveFrom = d
		}
	}
	if v := f["example"]; v != nil {
		a.Example, _ = p.boolean(v, what+": example")
	}
	if v := f["title"]; v != nil {
		a.Title, _, _ = p.str(v, what+": title")
	}
	if v := f["source"]; v != nil {
		a.Source, _, _ = p.str(v, what+": source")
	}
	if v := f["calendar"]; v != nil {
		a.CalendarConfig = p.calendar(v, what)
	}
	a.cal = DefaultCalendar()
	if len(p.probs) == before {
		c, err := NewCalendar(a.CalendarConfig)
		if err != nil { // the checks in calendar() catch everything NewCalendar does
			line := a.Line
			if v := f["calendar"]; v != nil {
				line = deref(v).Line
			}
			p.errf(line, "%s: calendar: %v", what, err)
		} else {
			a.cal = c
		}
	}
	if v := f["rules"]; v != nil {
		v = deref(v)
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			p.errf(v.Line, "%s: rules: want a non-empty list of rules", what)
		} else {
			seen := map[string]int{}
			for _, rn := range v.Content {
				r, ok := p.rule(rn, what)
				if !ok {
					continue
				}
				if first, dup := seen[r.Name]; dup {
					p.errf(r.Line, "%s: rule name %q used twice (first on line %d)", what, r.Name, first)
					continue
				}
				seen[r.Name] = r.Line
				a.Rules = append(a.Rules, r)
			}
		}
	}
	return a
}

func (p *parser) calendar(n *yaml.Node, what string) CalendarConfig {
	var c CalendarConfig
	what += ": calendar"
	f := p.fields(n, what, []string{"grundlovsdag_closed", "christmas_eve_closed", "new_years_eve_closed", "closed"}, nil)
	flag := func(key string) *bool {
		v := f[key]
		if v == nil {
			return nil
		}
		b, ok := p.boolean(v, what+": "+key)
		if !ok {
			return nil
		}
		return &b
	}
	c.GrundlovsdagClosed = flag("grundlovsdag_closed")
	c.ChristmasEveClosed = flag("christmas_eve_closed")
	c.NewYearsEveClosed = flag("new_years_eve_closed")
	if v := f["closed"]; v != nil {
		v = deref(v)
		if v.Kind != yaml.SequenceNode {
			p.errf(v.Line, "%s: closed: want a list of {from, to, name}", what)
			return c
		}
		for _, pn := range v.Content {
			pw := what + ": closed period"
			pf := p.fields(pn, pw, []string{"from", "to", "name"}, []string{"from", "to", "name"})
			if pf == nil || pf["from"] == nil || pf["to"] == nil || pf["name"] == nil {
				continue
			}
			from, ok1 := p.date(pf["from"], pw+": from")
			to, ok2 := p.date(pf["to"], pw+": to")
			name, _, ok3 := p.str(pf["name"], pw+": name")
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			line := deref(pn).Line
			switch {
			case to.Before(from):
				p.errf(line, "%s: to (%s) is before from (%s)", pw, to.Format(time.DateOnly), from.Format(time.DateOnly))
				continue
			case to.Sub(from) > 366*24*time.Hour:
				p.errf(line, "%s: longer than a year is not plausible", pw)
				continue
			case strings.TrimSpace(name) == "":
				p.errf(line, "%s: name is empty", pw)
				continue
			}
			c.Closed = append(c.Closed, ClosedPeriod{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Name: name})
		}
	}
	return c
}

// eventSpec reads an anchor or satisfied_by: either a bare event name or a
// mapping {event, purpose, function}.
func (p *parser) eventSpec(n *yaml.Node, what string, allowed []EventType) (EventSpec, bool) {
	var s EventSpec
	n = deref(n)
	before := len(p.probs)
	line := n.Line
	if n.Kind == yaml.ScalarNode {
		ev, _, ok := p.str(n, what)
		if !ok {
			return s, false
		}
		s.Event = EventType(ev)
	} else {
		f := p.fields(n, what, []string{"event", "purpose", "function"}, []string{"event"})
		if f == nil {
			return s, false
		}
		if v := f["event"]; v != nil {
			ev, l, _ := p.str(v, what+": event")
			s.Event, line = EventType(ev), l
		}
		if v := f["purpose"]; v != nil {
			pu, l, ok := p.str(v, what+": purpose")
			if ok && !slices.Contains(purposes, pu) {
				p.errf(l, "%s: unknown purpose %q (known: %s)", what, pu, strings.Join(purposes, ", "))
			}
			s.Purpose = pu
		}
		if v := f["function"]; v != nil {
			fu, l, ok := p.str(v, what+": function")
			if ok && !slices.Contains(functions, fu) {
				p.errf(l, "%s: unknown function %q (known: %s)", what, fu, strings.Join(functions, ", "))
			}
			s.Function = fu
		}
	}
	if s.Event != "" && !slices.Contains(allowed, s.Event) {
		known := make([]string, len(allowed))
		for i, e := range allowed {
			known[i] = string(e)
		}
		hint := ""
		switch s.Event {
		case EventMeetingSet:
			hint = " (to count from the meeting, use meeting_date)"
		case EventCaseWithdrawn:
			hint = " (a withdrawal cancels obligations; it neither anchors nor satisfies one)"
		case AnchorMeetingDate:
			hint = " (the meeting date is an anchor, not an event that can satisfy a rule)"
		}
		p.errf(line, "%s: unknown event %q%s (allowed: %s)", what, s.Event, hint, strings.Join(known, ", "))
	}
	if s.Event == AnchorMeetingDate && (s.Purpose != "" || s.Function != "") {
		p.errf(line, "%s: meeting_date takes no purpose or function", what)
	}
	if s.Function != "" && s.Event != EventBundlePulled && s.Event != EventBundleAcknowledged && slices.Contains(allowed, s.Event) {
		p.errf(line, "%s: function only applies to bundle_pulled and bundle_acknowledged (the recipient), not to %s", what, s.Event)
	}
	if s.Purpose != "" && (s.Event == EventGPCopySent || s.Event == EventGPReceiptReceived) && slices.Contains(purposes, s.Purpose) && !slices.Contains(gpPurposes, s.Purpose) {
		p.errf(line, "%s: %s purpose %s: only %s are copied to the GP", what, s.Event, s.Purpose, strings.Join(gpPurposes, " and "))
	}
	return s, len(p.probs) == before
}

// stage orders the events that concern one bundle: a bundle is received
// before it is pulled, pulled before it is acknowledged, and its GP copy is
// sent after it was received and receipted after it was sent. Events in
// different chains (pull vs GP copy) have no order.
func stage(e EventType) (chain, order int) {
	switch e {
	case EventBundleReceived:
		return 0, 0 // first in both chains
	case EventBundlePulled:
		return 1, 1
	case EventBundleAcknowledged:
		return 1, 2
	case EventGPCopySent:
		return 2, 1
	case EventGPReceiptReceived:
		return 2, 2
	}
	return -1, 0
}

// neverAfter reports why satisfied_by can never happen after the anchor, or "".
func neverAfter(anchor, sat EventSpec) string {
	if anchor.Event == AnchorMeetingDate {
		return "" // material before the meeting is the point of such rules
	}
	if anchor == sat {
		return "satisfied_by is the anchor event itself; the same bundle cannot be " + string(sat.Event) + " twice"
	}
	if anchor.Purpose == "" || anchor.Purpose != sat.Purpose {
		return ""
	}
	// Same purpose: the satisfying event concerns the anchor's own bundle.
	ac, ao := stage(anchor.Event)
	sc, so := stage(sat.Event)
	if so < ao && (sc == ac || sc == 0) {
		return fmt.Sprintf("a bundle of purpose %s is always %s before it is %s", anchor.Purpose, sat.Event, anchor.Event)
	}
	return ""
}

func (p *parser) rule(n *yaml.Node, agreement string) (Rule, bool) {
	n = deref(n)
	r := Rule{Line: n.Line, RollForward: true}
	what := agreement + ": rule"
	if name := peek(n, "name"); name != "" {
		what = fmt.Sprintf("%s %q", what, name)
	}
	f := p.fields(n, what, []string{"name", "description", "party", "anchor", "workdays", "hours", "cutoff", "roll_forward", "satisfied_by"},
		[]string{"name", "party", "anchor", "satisfied_by"})
	if f == nil {
		return r, false
	}
	before := len(p.probs)
	if v := f["name"]; v != nil {
		if s, line, ok := p.str(v, what+": name"); ok {
			r.Name = s
			if !reRuleName.MatchString(s) {
				p.errf(line, "%s: name must be lower-case letters, digits and '-' (at most 64)", what)
			}
		}
	}
	if v := f["description"]; v != nil {
		r.Description, _, _ = p.str(v, what+": description")
	}
	if v := f["party"]; v != nil {
		if s, line, ok := p.str(v, what+": party"); ok {
			r.Party = Party(s)
			if !slices.Contains(parties, r.Party) {
				known := make([]string, len(parties))
				for i, x := range parties {
					known[i] = string(x)
				}
				p.errf(line, "%s: unknown party %q (known: %s)", what, s, strings.Join(known, ", "))
			}
		}
	}
	anchorOK, satOK := false, false
	if v := f["anchor"]; v != nil {
		r.Anchor, anchorOK = p.eventSpec(v, what+": anchor", anchorEvents)
	}
	if v := f["satisfied_by"]; v != nil {
		r.SatisfiedBy, satOK = p.eventSpec(v, what+": satisfied_by", satisfierEvents)
	}
	meeting := r.Anchor.Event == AnchorMeetingDate
	wd, hr := f["workdays"], f["hours"]
	switch {
	case wd != nil && hr != nil:
		p.errf(deref(hr).Line, "%s: give either workdays or hours, not both", what)
	case wd == nil && hr == nil:
		p.errf(r.Line, "%s: give the offset: workdays: N or hours: N", what)
	case wd != nil:
		r.Unit = UnitWorkdays
		if v, ok := p.integer(wd, what+": workdays"); ok {
			r.Workdays = v
			line := deref(wd).Line
			switch {
			case v < 0 && anchorOK && !meeting:
				p.errf(line, "%s: workdays %d: a negative offset (before the anchor) only makes sense for the meeting_date anchor; %s has not happened yet when it is planned", what, v, r.Anchor.Event)
			case v < -maxWorkdays || v > maxWorkdays:
				p.errf(line, "%s: workdays %d is not plausible (at most %d either way)", what, v, maxWorkdays)
			}
		}
	default:
		r.Unit = UnitHours
		if v, ok := p.number(hr, what+": hours"); ok {
			line, raw := deref(hr).Line, deref(hr).Value
			minutes := v * 60
			switch {
			case v <= 0:
				p.errf(line, "%s: hours %s: an hour offset counts forward from an event and must be greater than 0", what, raw)
			case v > maxOffsetHours:
				p.errf(line, "%s: hours %s is not plausible (at most %d; use workdays for longer deadlines)", what, raw, maxOffsetHours)
			case minutes != math.Trunc(minutes):
				p.errf(line, "%s: hours %s is not a whole number of minutes", what, raw)
			default:
				r.Hours = time.Duration(minutes) * time.Minute
			}
		}
		if meeting {
			p.errf(deref(hr).Line, "%s: an hour offset needs an event anchor; the meeting date has no time of day (use workdays)", what)
		}
	}
	if v := f["cutoff"]; v != nil {
		if s, line, ok := p.str(v, what+": cutoff"); ok {
			m := reCutoff.FindStringSubmatch(s)
			switch {
			case m == nil:
				p.errf(line, "%s: cutoff %q: want HH:MM, 00:00 to 23:59 (leave it out for the end of the day)", what, s)
			case r.Unit == UnitHours:
				p.errf(line, "%s: cutoff: an hour rule has no cut-off time; its deadline is the anchor time plus the hours", what)
			default:
				r.Cutoff = s
			}
		}
	}
	if v := f["roll_forward"]; v != nil {
		if b, ok := p.boolean(v, what+": roll_forward"); ok {
			r.RollForward = b
		}
	}
	if anchorOK && satOK {
		if why := neverAfter(r.Anchor, r.SatisfiedBy); why != "" {
			line := r.Line
			if v := f["satisfied_by"]; v != nil {
				line = deref(v).Line
			}
			p.errf(line, "%s: can never be satisfied after its anchor: %s", what, why)
		}
	}
	return r, len(p.probs) == before
}

func (p *parser) checkSet(list []*Agreement, opts LoadOptions) {
	type key struct{ region, v string }
	versions := map[key]int{}
	starts := map[key]*Agreement{}
	for _, a := range list {
		if a.Region == "" || a.Version == "" || a.EffectiveFrom.IsZero() {
			continue
		}
		if opts.KnownRegion != nil && reRegion.MatchString(a.Region) && !opts.KnownRegion(a.Region) {
			p.errf(a.Line, "agreement %s: region %s is not in the registry", a.Key(), a.Region)
		}
		if first, dup := versions[key{a.Region, a.Version}]; dup {
			p.errf(a.Line, "agreement %s: version %q of %s given twice (first on line %d)", a.Key(), a.Version, a.Region, first)
			continue
		}
		versions[key{a.Region, a.Version}] = a.Line
		day := key{a.Region, a.EffectiveFrom.Format(time.DateOnly)}
		if other, dup := starts[day]; dup {
			p.errf(a.Line, "agreement %s overlaps version %s (line %d): both take effect on %s; versions of a region are in force from their effective_from until the next one's, so each needs its own date",
				a.Key(), other.Version, other.Line, day.v)
			continue
		}
		starts[day] = a
	}
}
