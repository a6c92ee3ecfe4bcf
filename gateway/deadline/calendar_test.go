package deadline

import (
	"strings"
	"testing"
)

func d(s string) Date {
	t, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWorkdays(t *testing.T) {
	c := DefaultCalendar()
	closed := []string{
		// DOMAIN.md §6 computed dates.
		"2025-04-17", "2025-04-18", "2025-04-21", "2025-05-29", "2025-06-09",
		"2026-04-02", "2026-04-03", "2026-04-06", "2026-05-14", "2026-05-25",
		"2027-03-25", "2027-03-26", "2027-03-29", "2027-05-06", "2027-05-17",
		"2026-01-01", "2026-12-25", "2026-12-24", "2026-12-31", "2026-06-05",
		"2023-05-05",               // the last Store Bededag
		"2026-11-28", "2026-11-29", // a weekend
	}
	for _, s := range closed {
		if c.IsWorkday(d(s)) {
			t.Errorf("fail/%s is a working day, want closed (%s)", s, c.Closure(d(s)))
		}
	}
	open := []string{
		"2024-04-26", "2025-05-16", "2026-05-01", // Store Bededag no more; 1 May is no helligdag
		"2026-11-26", "2026-12-23", "2026-12-30",
	}
	for _, s := range open {
		if !c.IsWorkday(d(s)) {
			t.Errorf("fail/%s is closed (%s), want a working day", s, c.Closure(d(s)))
		}
	}
}

func TestAddAndBetween(t *testing.T) {
	c := DefaultCalendar()
	cases := []struct {
		name string
		from string
		n    int
		want string
	}{
		{"ok/plain-week", "2026-11-23", 3, "2026-11-26"},
		{"ok/over-a-weekend", "2026-11-26", 2, "2026-11-30"},
		{"ok/anchor-on-a-weekend", "2026-11-28", 1, "2026-11-30"},
		{"ok/backwards-before-a-meeting", "2026-03-10", -5, "2026-03-03"},
		{"ok/backwards-over-easter-2026", "2026-04-08", -3, "2026-03-31"},
		{"ok/christmas-and-new-year", "2026-12-23", 4, "2027-01-04"},
		{"ok/grundlovsdag-2026-friday", "2026-06-04", 1, "2026-06-08"},
		{"ok/store-bededag-2023-still-closed", "2023-05-04", 1, "2023-05-08"},
		{"ok/store-bededag-2024-a-working-day", "2024-04-25", 1, "2024-04-26"},
		{"ok/zero", "2026-11-28", 0, "2026-11-28"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := c.AddWorkdays(d(tc.from), tc.n)
			if !got.Equal(d(tc.want)) {
				t.Fatalf("AddWorkdays(%s, %d) = %s, want %s", tc.from, tc.n, got.Format("2006-01-02"), tc.want)
			}
			if tc.n != 0 && c.Between(d(tc.from), got) != tc.n {
				t.Fatalf("Between(%s, %s) = %d, want %d", tc.from, tc.want, c.Between(d(tc.from), got), tc.n)
			}
		})
	}
}

func TestCalendarConfig(t *testing.T) {
	cfg, err := DecodeCalendarConfig(strings.NewReader(`
grundlovsdag_closed: false
christmas_eve_closed: false
closed:
  - {from: 2026-07-13, to: 2026-07-17, name: Sommerlukning}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCalendar(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsWorkday(d("2026-06-05")) || !c.IsWorkday(d("2026-12-24")) || c.IsWorkday(d("2026-12-31")) {
		t.Fatal("configurable days not applied")
	}
	if c.IsWorkday(d("2026-07-15")) || c.Closure(d("2026-07-15")) != "Sommerlukning" {
		t.Fatal("extra closed period not applied")
	}
	if got := c.AddWorkdays(d("2026-07-10"), 1); !got.Equal(d("2026-07-20")) {
		t.Fatalf("over the closure: %s", got.Format("2006-01-02"))
	}
	for _, bad := range []string{"grundlovsdag: false\n", "closed: [{from: 2026-07-13, to: 2026-07-01}]\n", "closed: [{from: x, to: 2026-07-01}]\n"} {
		cfg, err := DecodeCalendarConfig(strings.NewReader(bad))
		if err == nil {
			_, err = NewCalendar(cfg)
		}
		if err == nil {
			t.Errorf("fail/%q accepted", bad)
		}
	}
}
