package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/config"
)

// Timeouts of a gatewayd process.
const (
	// StartTimeout bounds the wait for /healthz after a start.
	StartTimeout = 60 * time.Second
	// StopTimeout bounds a graceful stop (SIGTERM); the gateway's own
	// shutdown deadline is 30 s.
	StopTimeout = 40 * time.Second
)

// S3SecretEnv is the environment variable UseS3 names for the S3 secret
// key; pass "S3SecretEnv=secret" to StartGatewayd.
const S3SecretEnv = "REHABGW_E2E_S3_SECRET"

// Config returns a default-like gatewayd configuration: SQLite and the
// embedded S3 server under a new data directory, the PKI's gateway
// certificate as TLS server certificate and as countersigning certificate
// (the operator's CVR identity), its CA for client certificates and for
// senders' signatures, listening on a free loopback port. The data
// directory exists (gatewayd creates it only in embedded-defaults mode).
func Config(t testing.TB, pki *PKI) *config.Config {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	return &config.Config{
		Listen:  FreeAddr(t),
		Data:    data,
		TLS:     config.TLS{Cert: pki.Cert("gateway"), Key: pki.Key("gateway"), ClientCA: []string{pki.CA()}},
		Signing: config.Signing{Cert: pki.Cert("gateway"), Key: pki.Key("gateway")},
		Trust:   config.Trust{Senders: []string{pki.CA()}},
		Store:   config.Store{Driver: "sqlite", Path: filepath.Join(data, "gateway.db")},
		Blob:    config.Blob{Embedded: &config.Embedded{Dir: filepath.Join(data, "blobs"), Addr: "127.0.0.1:0"}},
		Log:     config.Log{Level: "info"},
	}
}

// UsePostgres switches cfg to PostgreSQL at dsn (see PGSchema).
func UsePostgres(cfg *config.Config, dsn string) {
	cfg.Store = config.Store{Driver: "postgres", DSN: dsn}
}

// UseS3 switches cfg to an external S3 endpoint (host:port, plain HTTP) and
// bucket, created at start when missing; the secret key is read from
// S3SecretEnv, which the caller passes to StartGatewayd.
func UseS3(cfg *config.Config, endpoint, access, bucket string) {
	cfg.Blob = config.Blob{S3: &config.S3{Endpoint: endpoint, AccessKey: access, SecretKeyEnv: S3SecretEnv,
		Bucket: bucket, CreateBucket: true}}
}

// EmbeddedBlobDir is where the embedded S3 server of cfg keeps its objects
// (one file per object, see gateway/blob/embedded.go), or "" when cfg uses
// an external store.
func EmbeddedBlobDir(cfg *config.Config) string {
	if cfg.Blob.Embedded == nil {
		return ""
	}
	dir := cfg.Blob.Embedded.Dir
	if dir == "" {
		dir = filepath.Join(cfg.Data, "blobs")
	}
	return filepath.Join(dir, "buckets", "rehabgw")
}

// Proc is a gatewayd process. Its methods fail the test on trouble; they
// are safe for concurrent use.
type Proc struct {
	// Addr is host:port, for HTTPS (TCP) and HTTP/3 (UDP).
	Addr string
	// PKI holds the client certificates and the CA the gateway trusts.
	PKI *PKI
	// Config is the configuration the process runs with (nil for
	// StartGatewaydDefaults).
	Config *config.Config

	t       testing.TB
	args    []string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error
	starts  int
	clients map[string]*client.Client
}

// StartGatewayd writes cfg as YAML, starts gatewayd --config on it with env
// added to the environment (for blob.s3.secret_key_env), and returns once
// /healthz answers over mutual TLS. The process is stopped at cleanup.
// cfg.TLS.ClientCA[0] must be the ca.crt of a development PKI whose client
// certificates lie beside it.
func StartGatewayd(t testing.TB, cfg *config.Config, env ...string) *Proc {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("e2e: configuration: %v", err)
	}
	return StartGatewaydYAML(t, string(b), env...)
}

// StartGatewaydYAML is StartGatewayd with the configuration as YAML text.
func StartGatewaydYAML(t testing.TB, cfgYAML string, env ...string) *Proc {
	t.Helper()
	cfg, err := config.Decode(strings.NewReader(cfgYAML))
	if err != nil {
		t.Fatalf("e2e: configuration: %v\n%s", err, cfgYAML)
	}
	if len(cfg.TLS.ClientCA) == 0 {
		t.Fatal("e2e: configuration without tls.client_ca")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.yaml")
	if err := os.WriteFile(path, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newProc(t, dir, cfg.Listen, &PKI{Dir: filepath.Dir(cfg.TLS.ClientCA[0])}, []string{"--config", path}, env)
	p.Config = cfg
	p.start()
	return p
}

// StartGatewaydDefaults runs gatewayd without a configuration file, as
// `make run` does: `gatewayd --data DATA --listen ADDR` on a free port, with
// the embedded defaults (SQLite, the embedded S3 server, a development PKI
// generated in DATA/pki).
func StartGatewaydDefaults(t testing.TB, data string) *Proc {
	t.Helper()
	addr := FreeAddr(t)
	p := newProc(t, t.TempDir(), addr, &PKI{Dir: filepath.Join(data, "pki")}, []string{"--data", data, "--listen", addr}, nil)
	p.start()
	return p
}

func newProc(t testing.TB, dir, addr string, pki *PKI, args, env []string) *Proc {
	p := &Proc{Addr: addr, PKI: pki, t: t, args: args, env: env, logPath: filepath.Join(dir, "gatewayd.log")}
	t.Cleanup(p.cleanup)
	return p
}

// URL is the gateway's base URL.
func (p *Proc) URL() string { return "https://" + p.Addr }

// Flags are gwctl's connection flags for who (a PKI file stem), over TCP.
func (p *Proc) Flags(who string) []string {
	return []string{"--gateway", p.URL(), "--cert", p.PKI.Cert(who), "--key", p.PKI.Key(who), "--ca", p.PKI.CA(), "--transport", "tcp"}
}

// Client returns a client (TCP) with who's certificate, valid until the
// process is killed, stopped or restarted.
func (p *Proc) Client(who string) *client.Client {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[who]; c != nil {
		return c
	}
	c, err := p.newClient(who)
	if err != nil {
		p.t.Fatalf("e2e: client %s: %v", who, err)
	}
	if p.clients == nil {
		p.clients = map[string]*client.Client{}
	}
	p.clients[who] = c
	return c
}

func (p *Proc) newClient(who string) (*client.Client, error) {
	return client.New(client.Config{Gateway: p.URL(), CertFile: p.PKI.Cert(who), KeyFile: p.PKI.Key(who), CAFile: p.PKI.CA(), Transport: client.TransportTCP})
}

func (p *Proc) dropClients() {
	for _, c := range p.clients {
		_ = c.Close()
	}
	p.clients = nil
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *Proc) runningLocked() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// PID is the process ID of the current process (0 when none).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Log returns everything the process (all its starts) wrote to stdout and
// stderr.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *Proc) start() {
	p.t.Helper()
	bin := GatewaydBin(p.t)
	p.mu.Lock()
	if p.runningLocked() {
		p.mu.Unlock()
		p.t.Fatal("e2e: gatewayd is running already")
	}
	p.starts++
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== e2e: start %d of gatewayd %s (%s)\n", p.starts, strings.Join(p.args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.mu.Unlock()
		p.t.Fatalf("e2e: start gatewayd: %v", err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.waitErr = err
		}
		p.mu.Unlock()
		close(done)
	}()
	p.mu.Unlock()
	if err := p.waitHealthy(done); err != nil {
		p.Kill()
		p.t.Fatalf("e2e: gatewayd on %s: %v\n%s", p.Addr, err, tail(p.Log(), 8000))
	}
}

// waitHealthy polls /healthz over mutual TLS until it answers 200.
func (p *Proc) waitHealthy(done <-chan struct{}) error {
	deadline := time.Now().Add(StartTimeout)
	var c *client.Client
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	var last error
	for {
		select {
		case <-done:
			p.mu.Lock()
			err := p.waitErr
			p.mu.Unlock()
			return fmt.Errorf("exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/healthz did not answer within %v (last: %v)", StartTimeout, last)
		}
		if c == nil {
			// The PKI may not exist yet (embedded defaults generate it).
			if _, err := os.Stat(p.PKI.Cert("operator")); err == nil {
				if c, last = p.newClient("operator"); last != nil {
					c = nil
				}
			}
		}
		if c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := c.Get(ctx, "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					cancel()
					return nil
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			cancel()
			last = err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Signal sends sig to the current process without waiting for anything;
// unlike the other methods it may be called from any goroutine (a hook
// that kills the gateway at a precise moment, followed by Kill in the test).
func (p *Proc) Signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Proc) Kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.dropClients()
	p.mu.Unlock()
	if cmd == nil || done == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("e2e: gatewayd (pid %d) survived SIGKILL for 30 s", cmd.Process.Pid)
	}
}

// Stop sends SIGTERM and waits for a graceful exit. A process that does not
// exit within StopTimeout (then killed), or exits with an error, fails the
// test.
func (p *Proc) Stop() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.dropClients()
	running := p.runningLocked()
	p.mu.Unlock()
	if !running {
		return
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(StopTimeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		p.t.Errorf("e2e: gatewayd (pid %d) did not stop within %v of SIGTERM; killed", cmd.Process.Pid, StopTimeout)
		return
	}
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	if err != nil {
		p.t.Errorf("e2e: gatewayd (pid %d) stopped after %v with %v\n%s", cmd.Process.Pid, time.Since(start), err, tail(p.Log(), 4000))
	}
}

// Restart starts the process again on the same configuration and port
// (stopping it first with SIGTERM if it runs) and waits for /healthz.
func (p *Proc) Restart() {
	p.t.Helper()
	p.Stop()
	p.mu.Lock()
	p.dropClients()
	p.mu.Unlock()
	p.start()
}

func (p *Proc) cleanup() {
	if p.Running() {
		p.mu.Lock()
		cmd, done := p.cmd, p.done
		p.dropClients()
		p.mu.Unlock()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(StopTimeout):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
	}
	if p.t.Failed() {
		log := stacktraces.ReplaceAllString(p.Log(), "")
		p.t.Logf("e2e: output of gatewayd on %s (%d starts; stack traces left out):\n%s", p.Addr, p.starts, tail(log, 32<<10))
	}
}

// stacktraces matches the stack traces zap adds to error lines.
var stacktraces = regexp.MustCompile(`,"stacktrace":"(?:[^"\\]|\\.)*"`)

// tail returns at most the last n bytes of s, from a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}
