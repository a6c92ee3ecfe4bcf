package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/gateway/config"
	"github.com/rehabgw/rehabgw/gateway/service"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
	"github.com/rehabgw/rehabgw/internal/e2e"
)

// Signer returns who's signer from the PKI (who is a file stem such as
// "kommune-101").
func Signer(tb testing.TB, pki *e2e.PKI, who string) *xmlsig.Signer {
	tb.Helper()
	key, chain, err := certs.LoadKeyPair(pki.Cert(who), pki.Key(who))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := xmlsig.NewSigner(key, chain)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Client returns a client of the gateway at addr with who's certificate, over
// transport (tcp or h3), closed at cleanup.
func Client(tb testing.TB, pki *e2e.PKI, addr, who, transport string) *client.Client {
	tb.Helper()
	cl, err := client.New(client.Config{Gateway: "https://" + addr, CertFile: pki.Cert(who), KeyFile: pki.Key(who),
		CAFile: pki.CA(), Transport: transport})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// InProcess opens and starts a gateway with cfg in this process (as the
// online tests of gwctl do), closed at cleanup, and returns its address.
func InProcess(tb testing.TB, cfg *config.Config) string {
	tb.Helper()
	g, err := service.Open(context.Background(), cfg, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	if err := g.Start(); err != nil {
		_ = g.Close(context.Background())
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = g.Close(ctx)
	})
	return g.Addr()
}

// S3 is an S3 endpoint for the postgres setups.
type S3 struct {
	Endpoint, AccessKey, SecretKey, Bucket string
}

// Config is the blob.S3Config that reaches it.
func (s S3) Config() blob.S3Config {
	return blob.S3Config{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Bucket: s.Bucket, CreateBucket: true}
}

// MinIO is a real MinIO server for the benchmarks under tb (call it from the
// top-level benchmark, so that every sub-benchmark and -count run uses the
// same one): the server of REHABGW_TEST_S3
// (http://ACCESS:SECRET@HOST:PORT/BUCKET, as CI provides it), or one
// started by e2e.StartMinIO, stopped at tb's cleanup. When there is none it
// returns the reason, for testenv.Missing in the sub-benchmark that needs it
// (skipping the parent would skip the benchmarks that need no MinIO).
func MinIO(tb testing.TB) (S3, string) {
	tb.Helper()
	if v := os.Getenv("REHABGW_TEST_S3"); v != "" {
		u, err := url.Parse(v)
		if err != nil || u.User == nil || u.Host == "" || u.Scheme != "http" || strings.Trim(u.Path, "/") == "" {
			tb.Fatalf("REHABGW_TEST_S3 %q: want http://ACCESS:SECRET@HOST:PORT/BUCKET", v)
		}
		secret, _ := u.User.Password()
		return S3{Endpoint: u.Host, AccessKey: u.User.Username(), SecretKey: secret, Bucket: strings.Trim(u.Path, "/")}, ""
	}
	if e2e.MinIOBinary() == "" {
		return S3{}, "MinIO server (set REHABGW_TEST_S3, or run `scripts/minio.sh install`)"
	}
	endpoint, access, secret, _, _ := e2e.StartMinIO(tb)
	return S3{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: "rehabgw-bench"}, ""
}

// PostgresConfig is e2e.Config (the PKI of pki, a new data directory, a free
// port) on a new PostgreSQL schema and the S3 server s3, whose secret key
// the gateway reads from e2e.S3SecretEnv.
func PostgresConfig(tb testing.TB, pki *e2e.PKI, s3 S3) *config.Config {
	tb.Helper()
	cfg := e2e.Config(tb, pki)
	e2e.UsePostgres(cfg, e2e.PGSchema(tb))
	e2e.UseS3(cfg, s3.Endpoint, s3.AccessKey, s3.Bucket)
	return cfg
}

// CopyPKI copies the development PKI into dir (created), e.g. the pki
// directory of an embedded-defaults data directory, so that gatewayd uses it
// instead of generating one.
func CopyPKI(tb testing.TB, pki *e2e.PKI, dir string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	ents, err := os.ReadDir(pki.Dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(pki.Dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// Memory is a process's resident memory from /proc/PID/status.
type Memory struct {
	RSS, HWM int64 // VmRSS and VmHWM (peak RSS), bytes
}

// ReadMemory reads VmRSS and VmHWM of process pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			m.RSS = v << 10
		case "VmHWM:":
			m.HWM = v << 10
		}
	}
	if m.RSS == 0 || m.HWM == 0 {
		return m, fmt.Errorf("/proc/%d/status has no VmRSS/VmHWM", pid)
	}
	return m, nil
}
