// Package e2e runs whole gateways the way operators and their users do: the
// real gatewayd and gwctl binaries, built once per test binary, talking to
// real PostgreSQL and MinIO servers on loopback. It is the harness of the
// reliability tests in this package, and it is exported so that benchmarks
// elsewhere can reuse it:
//
//	func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
//
//	func BenchmarkPush(b *testing.B) {
//		pki := e2e.NewPKI(b)
//		gw := e2e.StartGatewayd(b, e2e.Config(b, pki))
//		bd := e2e.NewBundle(b, pki, 8<<20, 1)
//		...
//	}
//
// The pieces:
//
//   - Main / Build: gatewayd and gwctl compiled with `go build -o` into a
//     temporary directory; GatewaydBin and GwctlBin return their paths.
//   - NewPKI: the development PKI (certs.GenerateDev) in a temporary directory.
//   - Config: a default-like gatewayd configuration (SQLite and the embedded
//     S3 server under a new data directory, the PKI's gateway certificate for
//     TLS and countersigning), to be changed with UsePostgres and UseS3.
//   - StartGatewayd / StartGatewaydYAML / StartGatewaydDefaults: a gatewayd
//     process on a free port, returned once /healthz answers over mutual
//     TLS, as a *Proc that can be killed (SIGKILL), stopped (SIGTERM) and
//     restarted on the same configuration and port. Its output is kept in a
//     file and copied into the test log when the test fails.
//   - StartMinIO: a MinIO server of the test's own (data directory, free
//     port) that can be stopped and restarted on the same directory and port.
//   - PGSchema: a fresh schema on the test PostgreSQL server; NewProxy and
//     TCPProxy: a TCP proxy in front of it to cut and restore the database.
//   - NewBundle, Push, Inbox, GetBundle, Gwctl: making, pushing and reading
//     bundles.
//
// Every helper takes a testing.TB and registers its own cleanup. A server or
// tool that is missing skips the test on a developer's machine and fails it
// under CI=true (internal/testenv).
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/internal/testenv"
)

// Module is the import path of the module whose commands are built.
const Module = "github.com/rehabgw/rehabgw"

var bins struct {
	gatewayd, gwctl string
	err             error // why the binaries are not available
}

// Main builds gatewayd and gwctl into a temporary directory, runs the tests
// and removes the directory; call it from TestMain. A failing build ends the
// test binary with exit status 1; a missing Go toolchain only makes the tests
// that need the binaries skip (fail under CI).
func Main(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse() // testing.Verbose needs the flags
	}
	dir, err := os.MkdirTemp("", "rehabgw-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err := exec.LookPath("go"); err != nil {
		bins.err = errors.New("the go command is not on PATH (needed to build gatewayd and gwctl)")
	} else {
		start := time.Now()
		bins.gatewayd, bins.gwctl, err = Build(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building the binaries failed:", err)
			return 1
		}
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "e2e: built gatewayd and gwctl in %v\n", time.Since(start).Round(time.Millisecond))
		}
	}
	return m.Run()
}

// Build compiles cmd/gatewayd and cmd/gwctl into dir and returns their paths.
func Build(dir string) (gatewayd, gwctl string, err error) {
	gatewayd, gwctl = filepath.Join(dir, "gatewayd"), filepath.Join(dir, "gwctl")
	for bin, pkg := range map[string]string{gatewayd: Module + "/cmd/gatewayd", gwctl: Module + "/cmd/gwctl"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput()
		cancel()
		if err != nil {
			return "", "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return gatewayd, gwctl, nil
}

// GatewaydBin returns the path of the built gatewayd (see Main).
func GatewaydBin(t testing.TB) string {
	t.Helper()
	requireBinaries(t)
	return bins.gatewayd
}

// GwctlBin returns the path of the built gwctl (see Main).
func GwctlBin(t testing.TB) string {
	t.Helper()
	requireBinaries(t)
	return bins.gwctl
}

func requireBinaries(t testing.TB) {
	t.Helper()
	switch {
	case bins.err != nil:
		testenv.Missing(t, bins.err.Error())
	case bins.gatewayd == "":
		t.Fatal("e2e: the binaries were not built: call e2e.Main from TestMain")
	}
}

// PKI is a development PKI in a directory: ca.crt, and a certificate and key
// for gateway, kommune-101, kommune-751, region-1084, region-1082 and
// operator (see certs.DevLeaves).
type PKI struct{ Dir string }

// NewPKI generates a development PKI in a new temporary directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := certs.GenerateDev(dir, certs.DevOptions{Now: time.Now(), Registry: registry.Default()}); err != nil {
		t.Fatalf("e2e: development PKI: %v", err)
	}
	return &PKI{Dir: dir}
}

// CA is the trust anchor of every certificate of the PKI.
func (p *PKI) CA() string { return filepath.Join(p.Dir, certs.DevCACert) }

// Cert is the certificate of who (a file stem such as "kommune-101").
func (p *PKI) Cert(who string) string { return filepath.Join(p.Dir, who+".crt") }

// Key is the private key of who.
func (p *PKI) Key(who string) string { return filepath.Join(p.Dir, who+".key") }

// FreeAddr returns a loopback host:port whose port is free for TCP and UDP
// at the time of the call (gatewayd serves HTTPS and HTTP/3 on one port).
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("e2e: free port: %v", err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("e2e: no port free for both TCP and UDP")
	return ""
}

// GwctlResult is the outcome of one gwctl run.
type GwctlResult struct {
	Code           int
	Stdout, Stderr string
}

// GwctlTimeout bounds one gwctl run.
const GwctlTimeout = 2 * time.Minute

// Gwctl runs the built gwctl with args and returns its exit code and output.
// A gwctl that cannot be started, or runs longer than GwctlTimeout, fails
// the test.
func Gwctl(t testing.TB, args ...string) GwctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), GwctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, GwctlBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := GwctlResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("e2e: gwctl %s: no answer within %v\nstderr: %s", firstArgs(args), GwctlTimeout, res.Stderr)
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("e2e: gwctl %s: %v", firstArgs(args), err)
	}
	return res
}

// MustGwctl runs gwctl and fails the test unless it exits with want. It
// returns stdout.
func MustGwctl(t testing.TB, want int, args ...string) string {
	t.Helper()
	r := Gwctl(t, args...)
	if r.Code != want {
		t.Fatalf("gwctl %s: exit %d, want %d\nstdout: %.2000s\nstderr: %.2000s", firstArgs(args), r.Code, want, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

func firstArgs(args []string) string {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || len(words) == 2 {
			break
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}
