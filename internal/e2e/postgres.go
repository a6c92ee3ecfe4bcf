package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehabgw/rehabgw/internal/testenv"
)

// DefaultPGDSN is the test PostgreSQL server when REHABGW_TEST_PG is unset:
// the local trust-auth server as user postgres (or else root).
const DefaultPGDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var pgBase struct {
	once sync.Once
	dsn  string
	err  error
}

// PGBaseDSN returns a DSN of the test server ($REHABGW_TEST_PG, with the
// right to create schemas) that connects, or skips the test (fails it
// under CI).
func PGBaseDSN(t testing.TB) string {
	t.Helper()
	pgBase.once.Do(func() {
		candidates := []string{os.Getenv("REHABGW_TEST_PG")}
		if candidates[0] == "" {
			candidates = []string{DefaultPGDSN, strings.Replace(DefaultPGDSN, "//postgres@", "//root@", 1)}
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
		where := "REHABGW_TEST_PG"
		if os.Getenv("REHABGW_TEST_PG") == "" {
			where = DefaultPGDSN
		}
		testenv.Missing(t, "PostgreSQL at "+where+" (unreachable)")
	}
	return pgBase.dsn
}

// PGSchema creates an empty schema on the test server and returns a DSN
// whose search_path is it; the schema is dropped at cleanup. An unreachable
// server is testenv.Missing.
func PGSchema(t testing.TB) string {
	t.Helper()
	base := PGBaseDSN(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "e2e_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("e2e: connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("e2e: CREATE SCHEMA: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("e2e: dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("e2e: dropping schema %s: %v", name, err)
		}
	})
	return dsnWith(base, map[string]string{"search_path": name})
}

// PGAddr returns the host:port a DSN connects to.
func PGAddr(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("e2e: DSN: %v", err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// DSNVia returns dsn connecting to addr (host:port, e.g. a proxy) instead.
func DSNVia(dsn, addr string) string { return dsnWith(dsn, map[string]string{"host": addr}) }

// dsnWith sets connection parameters in a URL or key=value DSN.
func dsnWith(dsn string, params map[string]string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
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
		if k == "host" {
			h, p, _ := net.SplitHostPort(v)
			dsn += " host=" + h + " port=" + p
			continue
		}
		dsn += " " + k + "=" + v
	}
	return dsn
}

// Proxy forwards TCP connections to a target (a PostgreSQL server). It can
// drop its connections, stop listening (the server is gone) and listen again
// on the same address, and lose the reply to one COMMIT.
type Proxy struct {
	t      testing.TB
	target string

	mu    sync.Mutex
	addr  string
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	hook atomic.Pointer[commitHook]
}

// NewProxy starts a proxy to target on a free loopback port; it is closed at
// cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.Restore()
	t.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// TCPProxy starts a proxy to target and returns its address and the
// functions that cut it (stop listening, drop every connection: the
// database is unreachable) and restore it (listen again on the same
// address).
func TCPProxy(t testing.TB, target string) (addr string, cut, restore func()) {
	t.Helper()
	p := NewProxy(t, target)
	return p.Addr(), p.Cut, p.Restore
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Restore listens (again) on the proxy's address.
func (p *Proxy) Restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Cut
		if ln, err = net.Listen("tcp", p.Addr()); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("e2e: proxy: %v", err)
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

// Cut stops listening and drops every connection: connecting fails at once
// (connection refused) until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	p.mu.Unlock()
	p.DropConns()
}

// DropConns closes every forwarded connection, both ways (a server restart).
func (p *Proxy) DropConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// LoseNextCommitReply arms the proxy: the next COMMIT a client sends (the
// simple-protocol Query "commit" that pgx sends) is forwarded to the server,
// which commits, but the server's reply is thrown away and the client's
// connection is closed at once, so the client cannot know whether its
// transaction committed. The server side of that connection is kept open
// for a second so that the server completes the commit undisturbed. The
// returned channel is closed when that has happened.
func (p *Proxy) LoseNextCommitReply() <-chan struct{} {
	h := &commitHook{mode: hookLoseReply, done: make(chan struct{})}
	p.hook.Store(h)
	return h.done
}

// OnNextCommit arms the proxy to call fn when the next COMMIT passes. With
// before, fn runs first and the COMMIT is never forwarded: both sides of
// that connection are closed, so the server rolls the transaction back.
// Otherwise the COMMIT is forwarded to the server first and fn runs right
// after, before any reply can reach the client. The returned channel is
// closed once fn has returned; disarm cancels a hook that has not fired.
func (p *Proxy) OnNextCommit(before bool, fn func()) (fired <-chan struct{}, disarm func()) {
	mode := hookAfter
	if before {
		mode = hookBefore
	}
	h := &commitHook{mode: mode, fn: fn, done: make(chan struct{})}
	p.hook.Store(h)
	return h.done, func() { p.hook.CompareAndSwap(h, nil) }
}

type hookMode int

const (
	hookLoseReply hookMode = iota
	hookBefore
	hookAfter
)

type commitHook struct {
	mode hookMode
	fn   func()
	done chan struct{}
}

// commitQuery is the wire form of the simple-protocol Query "commit".
var commitQuery = append([]byte{'Q', 0, 0, 0, 11}, "commit\x00"...)

func (p *Proxy) serve(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, u)
		p.mu.Unlock()
	}()

	var swallow atomic.Bool // drop the server's replies
	done := make(chan struct{})
	go func() { // server → client
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := u.Read(buf)
			if n > 0 && !swallow.Load() {
				if _, werr := c.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = c.Close()
	}()

	// client → server, watching for COMMIT when armed.
	buf := make([]byte, 32<<10)
	var window []byte
loop:
	for {
		n, err := c.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if h := p.hook.Load(); h != nil {
				window = append(window, chunk...)
				if bytes.Contains(window, commitQuery) && p.hook.CompareAndSwap(h, nil) {
					switch h.mode {
					case hookLoseReply:
						swallow.Store(true)
						_, _ = u.Write(chunk)
						_ = c.Close() // the client learns nothing
						time.Sleep(time.Second)
						_ = u.Close()
						<-done
						close(h.done)
						return
					case hookBefore:
						h.fn()
						_ = u.Close()
						_ = c.Close()
						<-done
						close(h.done)
						return
					case hookAfter:
						_, werr := u.Write(chunk)
						h.fn()
						close(h.done)
						if werr != nil || err != nil {
							break loop
						}
						continue loop
					}
				}
				if len(window) > len(commitQuery) {
					window = append(window[:0], window[len(window)-len(commitQuery):]...)
				}
			}
			if _, werr := u.Write(chunk); werr != nil {
				break loop
			}
		}
		if err != nil {
			break loop
		}
	}
	_ = u.Close()
	<-done
}
