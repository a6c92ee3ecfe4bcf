package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/store"
	"github.com/rehabgw/rehabgw/gateway/store/storetest"
	"github.com/rehabgw/rehabgw/internal/testenv"
)

// The PostgreSQL tests use the server at $REHABGW_TEST_PG (a DSN with the
// right to create schemas), by default the local trust-auth server as user
// postgres or else root. Each test works in a schema of its own, dropped at
// the end.
const defaultPGDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var pgBase struct {
	once sync.Once
	dsn  string
	err  error
}

// pgBaseDSN returns a DSN that connects, or skips (fails under CI).
func pgBaseDSN(t testing.TB) string {
	t.Helper()
	pgBase.once.Do(func() {
		candidates := []string{os.Getenv("REHABGW_TEST_PG")}
		if candidates[0] == "" {
			candidates = []string{defaultPGDSN, strings.Replace(defaultPGDSN, "//postgres@", "//root@", 1)}
		}
		for _, dsn := range candidates {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := pgx.Connect(ctx, dsn)
			if err == nil {
				err = conn.Ping(ctx)
				_ = conn.Close(ctx)
			}
			cancel()
			if err == nil {
				pgBase.dsn, pgBase.err = dsn, nil
				return
			}
			pgBase.err = err
		}
	})
	if pgBase.err != nil {
		testenv.Missing(t, "PostgreSQL at "+redactDSN(os.Getenv("REHABGW_TEST_PG"))+" ("+errs.Redact(pgBase.err.Error())+")")
	}
	return pgBase.dsn
}

func redactDSN(dsn string) string {
	if dsn == "" {
		return defaultPGDSN
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return "$REHABGW_TEST_PG"
}

// pgSchema creates an empty schema and returns a DSN whose search_path is it.
func pgSchema(t testing.TB) string {
	t.Helper()
	base := pgBaseDSN(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "t_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("CREATE SCHEMA: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return dsnWith(base, map[string]string{"search_path": name})
}

// dsnWith sets connection parameters in a URL or key=value DSN.
func dsnWith(dsn string, params map[string]string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			for k, v := range params {
				if k == "host" {
					u.Host = v
					continue
				}
				q.Set(k, v)
			}
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	for k, v := range params {
		if k == "host" { // host:port
			h, p, _ := net.SplitHostPort(v)
			dsn += " host=" + h + " port=" + p
			continue
		}
		dsn += " " + k + "=" + v
	}
	return dsn
}

func openPG(t testing.TB, dsn string) *store.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPG(t, pgSchema(t)) })
}

func TestPostgresDeadlines(t *testing.T) {
	storetest.RunDeadlines(t, func(t *testing.T) storetest.DeadlineStore { return openPG(t, pgSchema(t)) })
}

// TestPostgresDeadlinesTwoPools: breach detection from two stores (two
// processes' pools) on one schema records each breach once.
func TestPostgresDeadlinesTwoPools(t *testing.T) {
	dsn := pgSchema(t)
	storetest.DeadlineConcurrent(t, openPG(t, dsn), openPG(t, dsn))
}

// TestPostgresTwoPools: several stores (separate pools, as separate
// processes would have) open one new schema at once, so their migrations
// race, and then commit concurrently: the ordering and the chain hold.
func TestPostgresTwoPools(t *testing.T) {
	dsn := pgSchema(t)
	const n = 4
	stores := make([]store.Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := store.OpenPostgres(ctx, dsn)
			if err != nil {
				t.Errorf("OpenPostgres %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var applied int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM goose_db_version WHERE version_id = 1").Scan(&applied); err != nil || applied != 1 {
		t.Fatalf("migration 1 recorded %d times (%v), want once", applied, err)
	}
	storetest.Concurrent(t, stores[0], stores[1])
}

// TestPostgresSchemas: stores in different schemas of one database do not
// see one another.
func TestPostgresSchemas(t *testing.T) {
	a, b := openPG(t, pgSchema(t)), openPG(t, pgSchema(t))
	if a.Schema() == b.Schema() {
		t.Fatalf("both stores in schema %s", a.Schema())
	}
	bd := storetest.NewBundle(uuid.NewString(), 1)
	if _, _, err := a.CommitBundle(t.Context(), bd, []store.Delivery{{Recipient: "kommune-0147"}}, storetest.Entry("push", bd.CPR)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Bundle(t.Context(), bd.ID); errs.KindOf(err) != errs.NotFound {
		t.Errorf("the other schema's store finds the bundle: %v", err)
	}
	if n, err := b.LastSeq(t.Context()); err != nil || n != 0 {
		t.Errorf("the other schema's LastSeq = %d, %v", n, err)
	}
}

func TestPostgresOpenErrors(t *testing.T) {
	base := pgBaseDSN(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	_, err := store.OpenPostgres(ctx, "postgres://user:secret@[::1")
	if errs.KindOf(err) != errs.Invalid || strings.Contains(err.Error(), "secret") {
		t.Errorf("OpenPostgres(malformed DSN): %v, want Invalid without the password", err)
	}
	_, err = store.OpenPostgres(ctx, dsnWith(base, map[string]string{"search_path": "no_such_schema_" + uuid.NewString()[:8]}))
	if errs.KindOf(err) != errs.Invalid {
		t.Errorf("OpenPostgres(missing schema): %v, want Invalid", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	_ = ln.Close()
	_, err = store.OpenPostgres(ctx, dsnWith(base, map[string]string{"host": closedAddr}))
	if errs.KindOf(err) != errs.Unavailable || errs.CodeOf(err) != "store.unavailable" {
		t.Errorf("OpenPostgres(nothing listening): %v, want Unavailable", err)
	}
}

// TestPostgresRecovers points a store at a TCP proxy in front of the shared
// server and cuts and restores the proxy: while the server is unreachable
// calls fail fast with Unavailable, and afterwards the same store works
// again, with no restart, the first call included.
func TestPostgresRecovers(t *testing.T) {
	dsn := pgSchema(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	s := openPG(t, dsnWith(dsn, map[string]string{"host": proxy.addr}))
	ctx := t.Context()
	push := func() (*store.Bundle, error) {
		b := storetest.NewBundle(uuid.NewString(), 1)
		_, _, err := s.CommitBundle(ctx, b, []store.Delivery{{Recipient: "kommune-0147"}}, storetest.Entry("push", b.CPR))
		return b, err
	}
	warm := func() { // several pooled connections, all idle afterwards
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { _, _ = s.Inbox(ctx, "kommune-0147", 0, 10) })
		}
		wg.Wait()
	}
	var pushed []*store.Bundle
	b, err := push()
	if err != nil {
		t.Fatal(err)
	}
	pushed = append(pushed, b)

	// 1. The server drops every connection (a restart) but is back at once:
	// the pool's connections are stale, and the next calls still succeed.
	warm()
	proxy.dropConns()
	if b, err = push(); err != nil {
		t.Fatalf("CommitBundle after the connections were dropped: %v", err)
	}
	pushed = append(pushed, b)
	warm()
	proxy.dropConns()
	if _, err := s.Bundle(ctx, pushed[0].ID); err != nil {
		t.Fatalf("Bundle after the connections were dropped: %v", err)
	}

	// 2. The server is unreachable: Unavailable, quickly.
	warm()
	proxy.cut()
	for name, call := range map[string]func(ctx context.Context) error{
		"Ping":         s.Ping,
		"CommitBundle": func(context.Context) error { _, err := push(); return err },
		"LastSeq":      func(ctx context.Context) error { _, err := s.LastSeq(ctx); return err },
		"Inbox":        func(ctx context.Context) error { _, err := s.Inbox(ctx, "kommune-0147", 0, 10); return err },
		"Audit":        func(ctx context.Context) error { return s.Audit(ctx, storetest.Entry("inbox", "")) },
	} {
		start := time.Now()
		err := call(ctx)
		if errs.KindOf(err) != errs.Unavailable || errs.CodeOf(err) != "store.unavailable" {
			t.Errorf("%s while the server is unreachable: %v, want Unavailable", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v to fail", name, d)
		}
	}

	// 3. The server is back: the same store works, the first call included.
	proxy.restore()
	if b, err = push(); err != nil {
		t.Fatalf("CommitBundle after the server came back: %v", err)
	}
	pushed = append(pushed, b)
	for _, b := range pushed {
		if _, err := s.Bundle(ctx, b.ID); err != nil {
			t.Errorf("Bundle(%s): %v", b.ID, err)
		}
	}
	if n, err := s.LastSeq(ctx); err != nil || n != int64(len(pushed)) {
		t.Errorf("LastSeq = %d, %v; want %d", n, err, len(pushed))
	}
	storetest.CheckChain(t, storetest.AllAudit(t, s))
}

// tcpProxy forwards connections to a target; it can drop its connections
// and stop listening, and listen again on the same address.
type tcpProxy struct {
	t      testing.TB
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.restore()
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

// restore listens (again) on the proxy's address.
func (p *tcpProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after cut
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c) })
		}
	})
}

func (p *tcpProxy) serve(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.Close()
		close(done)
	}()
	_, _ = io.Copy(c, u)
	_ = c.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// dropConns closes every forwarded connection, both ways.
func (p *tcpProxy) dropConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// cut stops listening and drops every connection: the server is gone.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	p.mu.Unlock()
	p.dropConns()
}
