package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehabgw/rehabgw/gateway/deadline"
	"github.com/rehabgw/rehabgw/gateway/store"
)

// BenchmarkDetectBreaches (SQLite) and BenchmarkDetectBreachesPostgres:
// each operation is one DetectBreaches call that finds and records the 10
// obligations that became overdue since the previous one (10 updates, 10
// breach rows, 10 outbox rows, one durable commit), among N open
// obligations that are not due. The detector reads the partial index on
// pending obligations' due time, so the cost must not grow with N: the
// open=1000000 case reports ratio_to_open_10000, its ns/op divided by that
// of open=10000 (run both, in this order, e.g.
// go test -run '^$' -bench 'DetectBreaches' ./gateway/store).
//
// Setup inserts the N open obligations with one INSERT ... SELECT (a
// recursive CTE on SQLite, generate_series on PostgreSQL), once per size.
func BenchmarkDetectBreaches(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		env := &detectBench{backend: "sqlite", open: n}
		b.Run(fmt.Sprintf("open=%d", n), func(sb *testing.B) {
			env.setup(sb, b, func(tb *testing.B) (store.DeadlineStore, bulkExec) {
				path := filepath.Join(tb.TempDir(), "gateway.db")
				s, err := store.OpenSQLite(path)
				if err != nil {
					tb.Fatal(err)
				}
				tb.Cleanup(func() { _ = s.Close() })
				db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
				if err != nil {
					tb.Fatal(err)
				}
				db.SetMaxOpenConns(1)
				tb.Cleanup(func() { _ = db.Close() })
				return s, func(ctx context.Context, q string, args ...any) error {
					_, err := db.ExecContext(ctx, q, args...)
					return err
				}
			})
			env.run(sb)
		})
	}
}

func BenchmarkDetectBreachesPostgres(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		env := &detectBench{backend: "postgres", open: n}
		b.Run(fmt.Sprintf("open=%d", n), func(sb *testing.B) {
			env.setup(sb, b, func(tb *testing.B) (store.DeadlineStore, bulkExec) {
				dsn := pgSchema(tb)
				s := openPG(tb, dsn)
				conn, err := pgx.Connect(tb.Context(), dsn)
				if err != nil {
					tb.Fatal(err)
				}
				tb.Cleanup(func() { _ = conn.Close(context.Background()) })
				return s, func(ctx context.Context, q string, args ...any) error {
					_, err := conn.Exec(ctx, q, args...)
					return err
				}
			})
			env.run(sb)
		})
	}
}

type bulkExec func(ctx context.Context, q string, args ...any) error

// detectBench is one size's database, kept across the calls of its
// sub-benchmark (one per b.N tried).
type detectBench struct {
	backend string
	open    int
	once    sync.Once
	failed  bool
	s       store.DeadlineStore
	exec    bulkExec

	streamed int // overdue-soon obligations inserted so far
	detected int // of those, the ones the benchmark has detected
}

var benchNsPerOp sync.Map // "backend/open" -> ns/op of the last run

const (
	benchPerOp = 10   // newly overdue obligations per operation
	benchChunk = 1000 // overdue-soon obligations inserted at a time
	benchCases = 1000 // the open obligations are spread over this many cases
)

// benchBase: the open obligations are due from 2100 on (never during the
// benchmark); the stream's obligation j is due at benchBase + j seconds.
var (
	benchBase = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	benchFar  = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// setup creates the store with its open obligations once, on the parent
// benchmark (a sub-benchmark's cleanups run after every b.N tried).
func (e *detectBench) setup(sb, parent *testing.B, open func(tb *testing.B) (store.DeadlineStore, bulkExec)) {
	if e.open >= 1_000_000 && testing.Short() {
		sb.Skip("1,000,000 open obligations: not in -short mode")
	}
	e.once.Do(func() {
		e.failed = true
		start := time.Now()
		e.s, e.exec = open(parent)
		if err := e.bulkOpen(parent.Context()); err != nil {
			sb.Fatalf("setup: %v", err)
		}
		if err := e.insertStream(parent.Context()); err != nil {
			sb.Fatalf("setup: %v", err)
		}
		sb.Logf("%s: %d open obligations set up in %v", e.backend, e.open, time.Since(start).Round(time.Millisecond))
		e.failed = false
	})
	if e.failed {
		sb.Fatal("setup failed")
	}
}

// bulkOpen inserts the cases and the e.open pending obligations due in
// 2100 in one statement each.
func (e *detectBench) bulkOpen(ctx context.Context) error {
	if e.backend == "sqlite" {
		if err := e.exec(ctx, `INSERT INTO cases (id, municipality, case_id, region, agreement, created)
			WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)
			SELECT i, 'kommune-0101', 'bench-' || i, 'region-1084', '2026-1', '2026-01-01T00:00:00.000000Z' FROM g`,
			benchCases); err != nil {
			return err
		}
		return e.exec(ctx, sqliteBulkObligations("open", "(i % ?3) + 1"), e.open, benchFar.Unix(), benchCases)
	}
	if err := e.exec(ctx, `INSERT INTO cases (id, municipality, case_id, region, agreement, created)
		SELECT i, 'kommune-0101', 'bench-' || i, 'region-1084', '2026-1', '2026-01-01T00:00:00Z'
		FROM generate_series(1, $1::int) i`, benchCases); err != nil {
		return err
	}
	if err := e.exec(ctx, pgBulkObligations("open", "(i % $3::int) + 1"), e.open, benchFar, benchCases); err != nil {
		return err
	}
	return e.exec(ctx, `ANALYZE cases, obligations`)
}

// insertStream adds benchChunk obligations due benchBase + j seconds (in
// case 1), continuing the stream.
func (e *detectBench) insertStream(ctx context.Context) error {
	from := benchBase.Add(time.Duration(e.streamed) * time.Second)
	// The generated i runs from 1: obligation j = streamed+i-1 is due at from + (i-1) s.
	from = from.Add(-time.Second)
	var err error
	if e.backend == "sqlite" {
		err = e.exec(ctx, sqliteBulkObligations(fmt.Sprintf("s%d-", e.streamed), "1"), benchChunk, from.Unix())
	} else {
		err = e.exec(ctx, pgBulkObligations(fmt.Sprintf("s%d-", e.streamed), "1"), benchChunk, from)
	}
	if err == nil {
		e.streamed += benchChunk
	}
	return err
}

// sqliteBulkObligations: ?1 rows, obligation i due at unix time ?2 + i,
// in case caseExpr (which may use ?3).
func sqliteBulkObligations(prefix, caseExpr string) string {
	return `INSERT INTO obligations (case_ref, id, ord, rule, party, unit, status, due, created,
		cancel_reason, replaces, data)
		WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?1)
		SELECT ` + caseExpr + `, 'bench/` + prefix + `' || i, i, 'bench', 'gateway', 'hours', 'pending',
			d || '.000000Z', '2026-01-01T00:00:00.000000Z', '', '',
			'{"ID":"bench/` + prefix + `' || i || '","Rule":"bench","Party":"gateway","Unit":"hours","Due":"' || d ||
			'Z","Status":"pending","CreatedAt":"2026-01-01T00:00:00Z"}'
		FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S', ?2 + i, 'unixepoch') AS d FROM g)`
}

// pgBulkObligations: $1 rows, obligation i due at $2 + i seconds, in case
// caseExpr (which may use $3).
func pgBulkObligations(prefix, caseExpr string) string {
	return `INSERT INTO obligations (case_ref, id, ord, rule, party, unit, status, due, created,
		cancel_reason, replaces, data)
		SELECT ` + caseExpr + `, 'bench/` + prefix + `' || i, i, 'bench', 'gateway', 'hours', 'pending',
			d, '2026-01-01T00:00:00Z', '', '',
			jsonb_build_object('ID', 'bench/` + prefix + `' || i, 'Rule', 'bench', 'Party', 'gateway',
				'Unit', 'hours', 'Due', to_char(d AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
				'Status', 'pending', 'CreatedAt', '2026-01-01T00:00:00Z')
		FROM (SELECT i, $2::timestamptz + i * interval '1 second' AS d FROM generate_series(1, $1::int) i) g`
}

func benchMissedBy(_ store.CaseKey, o deadline.Obligation, now time.Time) deadline.MissedBy {
	return deadline.MissedBy{Hours: math.Ceil(now.Sub(o.Due).Hours()*10) / 10}
}

func (e *detectBench) run(b *testing.B) {
	ctx := b.Context()
	b.ResetTimer()
	for range b.N {
		if e.detected+benchPerOp > e.streamed {
			b.StopTimer()
			if err := e.insertStream(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		e.detected += benchPerOp
		// Due before now: stream obligations 0 .. detected-1.
		now := benchBase.Add(time.Duration(e.detected-1)*time.Second + time.Microsecond)
		bs, err := e.s.DetectBreaches(ctx, now, 100, benchMissedBy)
		if err != nil {
			b.Fatal(err)
		}
		if len(bs) != benchPerOp {
			b.Fatalf("detected %d breaches, want %d", len(bs), benchPerOp)
		}
	}
	b.StopTimer()
	nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	benchNsPerOp.Store(fmt.Sprintf("%s/%d", e.backend, e.open), nsPerOp)
	b.ReportMetric(benchPerOp, "breaches/op")
	if e.open > 10_000 {
		if small, ok := benchNsPerOp.Load(e.backend + "/10000"); ok {
			b.ReportMetric(nsPerOp/small.(float64), "ratio_to_open_10000")
		}
	}
}
