package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// TestSQLitePragmas: the durability settings are in force on the writer.
func TestSQLitePragmas(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000",
	} {
		var got string
		if err := s.w.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
	var qo string
	if err := s.r.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo); err != nil || qo != "1" {
		t.Errorf("readers: PRAGMA query_only = %q, %v", qo, err)
	}
}

// TestSQLiteBusy: another process holding the write lock beyond the busy
// timeout makes writes Unavailable, not internal errors; a write waiting for
// the lock gives up when its context ends.
func TestSQLiteBusy(t *testing.T) {
	old := sqliteBusyTimeout
	sqliteBusyTimeout = 200 * time.Millisecond
	defer func() { sqliteBusyTimeout = old }()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := t.Context()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err = s.Audit(ctx, AuditEntry{Action: "inbox"})
	if errs.KindOf(err) != errs.Unavailable || errs.CodeOf(err) != CodeUnavailable {
		t.Errorf("Audit while another process writes: %v, want Unavailable", err)
	}
	sqliteBusyTimeout = 10 * time.Second
	s2, err := OpenSQLite(path + "") // same file, long busy timeout
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s2.Audit(short, AuditEntry{Action: "inbox"})
	if !errors.Is(err, context.DeadlineExceeded) || errs.KindOf(err) != errs.Unavailable {
		t.Errorf("Audit with a deadline while another process writes: %v, want Unavailable (deadline)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the blocked write took %v to give up", d)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, AuditEntry{Action: "inbox"}); err != nil {
		t.Errorf("Audit after the other process finished: %v", err)
	}
	// Reads were never blocked.
	if _, err := s.LastSeq(ctx); err != nil {
		t.Error(err)
	}
}
