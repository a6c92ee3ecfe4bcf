// Package deadline tracks the deadlines municipalities and regions agree in
// their samarbejdsaftaler, counted in Danish working days (hverdage) or in
// hours.
//
// This file is the working-day calendar. Hverdage are Monday to Friday
// minus the Danish public holidays (github.com/rickar/cal/v2/dk, which knows
// that Store Bededag was abolished after 2023), minus the days public
// offices usually close although they are not helligdage — Grundlovsdag,
// 24 December and 31 December, each configurable and closed by default —
// minus any extra closed days an agreement configures (a region's summer
// closure, say).
//
// Counting follows DOMAIN.md §6: the anchor day is never counted; "N
// hverdage after D" is the N-th working day after D, "N hverdage before D"
// the N-th working day before D.
package deadline

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/dk"
	"gopkg.in/yaml.v3"
)

// Date is a calendar day, represented as midnight UTC.
type Date = time.Time

// DateOf returns the calendar day of t in loc (nil: t's own location).
func DateOf(t time.Time, loc *time.Location) Date {
	if loc != nil {
		t = t.In(loc)
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	return d, nil
}

// ClosedPeriod is a run of extra closed days, both ends included.
type ClosedPeriod struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
	Name string `yaml:"name"`
}

// CalendarConfig configures the days that are closed besides weekends and
// public holidays. Nil booleans take their default (closed).
type CalendarConfig struct {
	GrundlovsdagClosed *bool          `yaml:"grundlovsdag_closed"`
	ChristmasEveClosed *bool          `yaml:"christmas_eve_closed"`
	NewYearsEveClosed  *bool          `yaml:"new_years_eve_closed"`
	Closed             []ClosedPeriod `yaml:"closed"`
}

// DecodeCalendarConfig strictly decodes a calendar file (unknown keys are
// errors naming the line).
func DecodeCalendarConfig(r io.Reader) (CalendarConfig, error) {
	var c CalendarConfig
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return c, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("calendar: %v", err)
	}
	return c, nil
}

// Calendar answers working-day questions. It is immutable and safe for
// concurrent use.
type Calendar struct {
	bc    *cal.BusinessCalendar
	extra map[Date]string
}

// closedHoliday builds a fixed-date closed day.
func closedHoliday(name string, month time.Month, day int) *cal.Holiday {
	return &cal.Holiday{Name: name, Type: cal.ObservanceOther, Month: month, Day: day, Func: cal.CalcDayOfMonth}
}

// NewCalendar builds a calendar from its configuration.
func NewCalendar(cfg CalendarConfig) (*Calendar, error) {
	bc := cal.NewBusinessCalendar()
	for _, h := range dk.Holidays {
		if h == dk.Grundlovsdag {
			continue // not a helligdag; configurable below
		}
		bc.AddHoliday(h)
	}
	on := func(b *bool) bool { return b == nil || *b }
	if on(cfg.GrundlovsdagClosed) {
		bc.AddHoliday(dk.Grundlovsdag)
	}
	if on(cfg.ChristmasEveClosed) {
		bc.AddHoliday(closedHoliday("Juleaftensdag", time.December, 24))
	}
	if on(cfg.NewYearsEveClosed) {
		bc.AddHoliday(closedHoliday("Nytårsaftensdag", time.December, 31))
	}
	c := &Calendar{bc: bc, extra: map[Date]string{}}
	for i, p := range cfg.Closed {
		from, err := ParseDate(p.From)
		if err != nil {
			return nil, fmt.Errorf("closed[%d].from: %w", i, err)
		}
		to, err := ParseDate(p.To)
		if err != nil {
			return nil, fmt.Errorf("closed[%d].to: %w", i, err)
		}
		if to.Before(from) {
			return nil, fmt.Errorf("closed[%d]: to is before from", i)
		}
		if to.Sub(from) > 366*24*time.Hour {
			return nil, fmt.Errorf("closed[%d]: a closed period longer than a year is not plausible", i)
		}
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			c.extra[d] = p.Name
		}
	}
	return c, nil
}

// DefaultCalendar is the calendar with every default and no extra days.
func DefaultCalendar() *Calendar {
	c, _ := NewCalendar(CalendarConfig{})
	return c
}

// IsWorkday reports whether d is a hverdag.
func (c *Calendar) IsWorkday(d Date) bool {
	d = DateOf(d, nil)
	if _, closed := c.extra[d]; closed {
		return false
	}
	return c.bc.IsWorkday(d)
}

// Closure names why d is not a working day ("" when it is one).
func (c *Calendar) Closure(d Date) string {
	d = DateOf(d, nil)
	if name, ok := c.extra[d]; ok {
		return name
	}
	if _, observed, h := c.bc.IsHoliday(d); observed && h != nil {
		return h.Name
	}
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return "weekend"
	}
	return ""
}

// AddWorkdays returns the n-th working day after d (n > 0) or before d
// (n < 0); d itself is never counted. With n == 0 it returns d.
func (c *Calendar) AddWorkdays(d Date, n int) Date {
	d = DateOf(d, nil)
	step := 1
	if n < 0 {
		step, n = -1, -n
	}
	for n > 0 {
		d = d.AddDate(0, 0, step)
		if c.IsWorkday(d) {
			n--
		}
	}
	return d
}

// Between returns the number of working days after a up to and including
// b; negative when b is before a (then counting the working days after b up
// to and including a). AddWorkdays(a, Between(a, b)) == b when b is a
// working day.
func (c *Calendar) Between(a, b Date) int {
	a, b = DateOf(a, nil), DateOf(b, nil)
	sign := 1
	if b.Before(a) {
		a, b, sign = b, a, -1
	}
	n := 0
	for d := a.AddDate(0, 0, 1); !d.After(b); d = d.AddDate(0, 0, 1) {
		if c.IsWorkday(d) {
			n++
		}
	}
	return sign * n
}

// NextWorkday returns d when it is a working day, else the first working day after it.
func (c *Calendar) NextWorkday(d Date) Date {
	d = DateOf(d, nil)
	for !c.IsWorkday(d) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}
