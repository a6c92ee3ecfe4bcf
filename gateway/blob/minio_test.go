package blob_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/internal/testenv"
)

// minioConfig returns the S3Config of a real MinIO server: the one named by
// REHABGW_TEST_S3 (http://ACCESS:SECRET@127.0.0.1:PORT/BUCKET), or one the
// test starts from the minio binary (`scripts/minio.sh install`) on a free
// port with its data in a temporary directory, stopped at cleanup.
func minioConfig(t testing.TB) blob.S3Config {
	t.Helper()
	return startMinIO(t, minioOptions{})
}

// minioOptions ask for a server the test starts itself (never the one in
// REHABGW_TEST_S3): extra environment, and TLS with the certificates in
// certsDir (public.crt, private.key) trusted through caFile.
type minioOptions struct {
	env      []string
	certsDir string
	caFile   string
}

func startMinIO(t testing.TB, opt minioOptions) blob.S3Config {
	t.Helper()
	own := len(opt.env) > 0 || opt.certsDir != ""
	if v := os.Getenv("REHABGW_TEST_S3"); v != "" && !own {
		u, err := url.Parse(v)
		if err != nil || u.User == nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			t.Fatalf("REHABGW_TEST_S3 %q: want http://ACCESS:SECRET@HOST:PORT/BUCKET", v)
		}
		secret, _ := u.User.Password()
		return blob.S3Config{
			Endpoint: u.Host, Secure: u.Scheme == "https",
			AccessKey: u.User.Username(), SecretKey: secret,
			Bucket: strings.Trim(u.Path, "/"), CreateBucket: true,
		}
	}
	bin := minioBinary()
	if bin == "" {
		testenv.Missing(t, "MinIO server (set REHABGW_TEST_S3, or run `scripts/minio.sh install`)")
	}
	dir := t.TempDir()
	port, console := freePort(t), freePort(t)
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console), "--quiet")
	client := http.DefaultClient
	scheme := "http"
	if opt.certsDir != "" {
		cmd.Args = append(cmd.Args, "--certs-dir", opt.certsDir)
		pem, err := os.ReadFile(opt.caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		scheme = "https"
	}
	const user, pass = "rehabgwtest", "rehabgwtest-secret"
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+user, "MINIO_ROOT_PASSWORD="+pass,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on")
	cmd.Env = append(cmd.Env, opt.env...)
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
		logf.Close()
	})
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(scheme + "://" + endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-waited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("minio exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("minio did not answer /minio/health/ready within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return blob.S3Config{Endpoint: endpoint, Secure: opt.certsDir != "", CAFile: opt.caFile,
		AccessKey: user, SecretKey: pass, Bucket: "rehabgw-test", CreateBucket: true}
}

func minioBinary() string {
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

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newS3(t testing.TB, cfg blob.S3Config) *blob.S3 {
	t.Helper()
	s, err := blob.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}
