package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkdaysCLI(t *testing.T) {
	cal := filepath.Join(t.TempDir(), "cal.yaml")
	os.WriteFile(cal, []byte("closed: [{from: 2026-07-13, to: 2026-07-24, name: Sommerlukning}]\n"), 0o644)
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"ok/add", []string{"workdays", "add", "2026-11-26", "2"}, 0, "2026-11-30"},
		{"ok/add-negative", []string{"workdays", "add", "2026-03-10", "-5"}, 0, "2026-03-03"},
		{"ok/easter", []string{"workdays", "add", "2026-04-01", "1"}, 0, "2026-04-07"},
		{"ok/between", []string{"workdays", "between", "2026-12-23", "2027-01-04"}, 0, "4"},
		{"ok/between-backwards", []string{"workdays", "between", "2027-01-04", "2026-12-23"}, 0, "-4"},
		{"ok/calendar-file", []string{"workdays", "add", "--calendar", cal, "2026-07-10", "1"}, 0, "2026-07-27"},
		{"usage/bad-date", []string{"workdays", "add", "2026-13-01", "1"}, 2, ""},
		{"usage/bad-n", []string{"workdays", "add", "2026-11-26", "x"}, 2, ""},
		{"usage/missing-calendar", []string{"workdays", "add", "--calendar", "/nonexistent", "2026-11-26", "1"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := gwctl(t, tc.args...)
			if code != tc.code || strings.TrimSpace(out) != tc.out {
				t.Fatalf("exit %d out %q (stderr %s), want %d %q", code, out, errOut, tc.code, tc.out)
			}
		})
	}
}
