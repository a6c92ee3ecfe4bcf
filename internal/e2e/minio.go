package e2e

import (
	"context"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/rehabgw/rehabgw/internal/testenv"
)

// MinIO credentials of the servers StartMinIO starts.
const (
	MinIOAccessKey = "rehabgwe2e"
	MinIOSecretKey = "rehabgwe2e-secret"
)

// MinIOBinary returns the path of the minio server binary: on PATH, or in
// $GOPATH/bin where `scripts/minio.sh install` puts it; "" when missing.
func MinIOBinary() string {
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	for _, gp := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(gp, "bin", "minio")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// minioServer is one MinIO of a test: its data directory and ports stay the
// same across stop and restart.
type minioServer struct {
	t        testing.TB
	bin      string
	dir      string
	endpoint string
	console  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

// StartMinIO starts a MinIO server of the test's own (the minio binary, see
// MinIOBinary; missing → testenv.Missing) with its data in a temporary
// directory, on a free loopback port, and waits until it is ready. stop
// stops it (SIGTERM) and waits; restart starts it again on the same
// directory and port and waits until it is ready. It is stopped at cleanup.
func StartMinIO(t testing.TB) (endpoint, access, secret string, stop, restart func()) {
	t.Helper()
	bin := MinIOBinary()
	if bin == "" {
		testenv.Missing(t, "MinIO server binary (run `scripts/minio.sh install`)")
	}
	m := &minioServer{t: t, bin: bin, dir: t.TempDir(), endpoint: freeTCPAddr(t), console: freeTCPAddr(t)}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
			t.Logf("e2e: MinIO log:\n%s", tail(string(b), 16<<10))
		}
	})
	m.start()
	return m.endpoint, MinIOAccessKey, MinIOSecretKey, m.stop, m.start
}

func freeTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (m *minioServer) start() {
	m.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 1; ; attempt++ {
		err := m.startOnce(time.Until(deadline))
		if err == nil {
			return
		}
		// The port may linger for a moment after a stop.
		if attempt >= 5 || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
			m.t.Fatalf("e2e: minio on %s: %v\n%s", m.endpoint, err, tail(string(b), 8000))
		}
		time.Sleep(time.Second)
	}
}

func (m *minioServer) startOnce(within time.Duration) error {
	m.mu.Lock()
	if m.done != nil {
		select {
		case <-m.done:
		default:
			m.mu.Unlock()
			return fmt.Errorf("running already")
		}
	}
	logf, err := os.OpenFile(filepath.Join(m.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"),
		"--address", m.endpoint, "--console-address", m.console, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+MinIOAccessKey, "MINIO_ROOT_PASSWORD="+MinIOSecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		m.mu.Unlock()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	m.cmd, m.done, m.logf = cmd, done, logf
	m.mu.Unlock()

	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get("http://" + m.endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("minio exited at start")
		default:
		}
		if time.Now().After(deadline) {
			m.stop()
			return fmt.Errorf("minio did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *minioServer) stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// S3Keys lists the object keys under prefix in bucket of an S3 endpoint
// (plain HTTP), for checks on what a gateway left in storage.
func S3Keys(t testing.TB, endpoint, access, secret, bucket, prefix string) []string {
	t.Helper()
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	for obj := range c.ListObjectsIter(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("e2e: listing %s/%s on %s: %v", bucket, prefix, endpoint, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys
}
