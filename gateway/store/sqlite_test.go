package store_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rehabgw/rehabgw/gateway/store"
	"github.com/rehabgw/rehabgw/gateway/store/storetest"
)

func openSQLite(t *testing.T, path string) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "gateway.db"))
	})
}

func TestSQLiteDeadlines(t *testing.T) {
	storetest.RunDeadlines(t, func(t *testing.T) storetest.DeadlineStore {
		return openSQLite(t, filepath.Join(t.TempDir(), "gateway.db"))
	})
}

// TestSQLiteDeadlinesTwoHandles: breach detection from two stores on one
// file (two processes) records each breach once.
func TestSQLiteDeadlinesTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	storetest.DeadlineConcurrent(t, openSQLite(t, path), openSQLite(t, path))
}

// TestSQLiteTwoHandles: two stores on one file stand for two processes;
// BEGIN IMMEDIATE keeps the ordering and the chain between them.
func TestSQLiteTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	storetest.Concurrent(t, openSQLite(t, path), openSQLite(t, path))
}

// TestSQLiteReopen: the data survive Close, and migrating again is a no-op.
func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	s := openSQLite(t, path)
	b := storetest.NewBundle(uuid.NewString(), 2)
	if _, _, err := s.CommitBundle(t.Context(), b, []store.Delivery{{Recipient: "kommune-0147"}}, storetest.Entry("push", b.CPR)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, path)
	got, err := s.Bundle(t.Context(), b.ID)
	if err != nil || string(got.Manifest) != string(b.Manifest) || len(got.Parts) != 2 {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	storetest.CheckChain(t, storetest.AllAudit(t, s))
}

func TestSQLiteBadPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if s, err := store.OpenSQLite(p); err == nil {
			_ = s.Close()
			t.Errorf("OpenSQLite(%q) succeeded", p)
		}
	}
}

// TestSQLiteSurvivesKill: a process committing from several goroutines is
// killed with SIGKILL; every push it had acknowledged (CommitBundle
// returned) is in the database afterwards, whole, and the audit chain
// holds. (Power loss is not simulated; synchronous=FULL, checked in
// TestSQLitePragmas, is what covers it.)
func TestSQLiteSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REHABGW_KILL_DB="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	lines := bufio.NewScanner(out)
	deadline := time.Now().Add(60 * time.Second)
	for len(acked) < 150 && lines.Scan() && time.Now().Before(deadline) {
		if id, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
			acked = append(acked, id)
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if len(acked) < 150 {
		t.Fatalf("the helper acknowledged only %d pushes", len(acked))
	}

	s := openSQLite(t, path)
	for _, id := range acked {
		b, err := s.Bundle(t.Context(), id)
		if err != nil {
			t.Fatalf("acknowledged bundle %s lost: %v", id, err)
		}
		if len(b.Parts) != 2 {
			t.Errorf("bundle %s has %d parts", id, len(b.Parts))
		}
		if ds, err := s.Deliveries(t.Context(), id); err != nil || len(ds) != 1 {
			t.Errorf("bundle %s: deliveries %v, %v", id, ds, err)
		}
	}
	entries := storetest.AllAudit(t, s)
	storetest.CheckChain(t, entries)
	if top, err := s.LastSeq(t.Context()); err != nil || top != int64(len(entries)) {
		t.Errorf("LastSeq %d, %v with %d audit entries: a commit was torn", top, err, len(entries))
	}
}

// TestSQLiteKillHelper is the process TestSQLiteSurvivesKill kills.
func TestSQLiteKillHelper(t *testing.T) {
	path := os.Getenv("REHABGW_KILL_DB")
	if path == "" {
		t.Skip("run by TestSQLiteSurvivesKill")
	}
	s, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				b := storetest.NewBundle(fmt.Sprintf("k%d-%d-%s", w, i, uuid.NewString()), 2)
				if _, _, err := s.CommitBundle(t.Context(), b, []store.Delivery{{Recipient: "kommune-0147"}}, storetest.Entry("push", b.CPR)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "acked %s\n", b.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
