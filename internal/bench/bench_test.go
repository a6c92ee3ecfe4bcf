package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/internal/e2e"
	"github.com/rehabgw/rehabgw/internal/testenv"
)

// The benchmarks of the goals. `make bench` runs them with
// -benchtime=20x (ingest, plain put) and 1x (the 200 MiB attachment), five
// times each, and internal/benchreport prints the medians, the ratios and
// whether each goal is met:
//
//   - BenchmarkIngest/{tcp,h3}/{sqlite,postgres}: pushes of the typical
//     bundle (Typical: about 100 KB of XML, a 1 MiB attachment), one after
//     another over one client connection, each with a fresh bundle ID, to an
//     in-process gateway (service.Open, as `make run` configures it for
//     sqlite: SQLite and the embedded S3 server; for postgres: PostgreSQL and
//     MinIO). ns/op is the time of one push, request to receipt; p50-ms and
//     p99-ms are over the timed pushes; MB/s counts the parts and the
//     manifest.
//   - BenchmarkPlainPut/{embedded,minio}: the floor under that: the same
//     part objects (the four parts as four objects, which is what the
//     gateway writes per push) put with minio-go, one after another, to the
//     same kind of S3 server. Ratio goal: Ingest/tcp/X ≤ 2 × PlainPut/Y.
//   - BenchmarkLargeAttachment/{embedded,postgres}: one push of a bundle
//     with a 200 MiB attachment streamed from a file, to a fresh gatewayd
//     process; peak-rss-growth-MB is its VmHWM after the push minus its VmRSS
//     before (goal ≤ 64 MB).

func TestMain(m *testing.M) {
	code := e2e.Main(m) // builds gatewayd for BenchmarkLargeAttachment
	largeFile.cleanup()
	os.Exit(code)
}

// poolSize is how many signed manifests are made before the timer runs; more
// are made, with the timer stopped, when a run needs them.
const poolSize = 32

// signPool signs n manifests of bd, each with a fresh bundle ID.
func signPool(tb testing.TB, bd *Bundle, sign func([]byte) ([]byte, error), n int) [][]byte {
	tb.Helper()
	out := make([][]byte, n)
	for i := range out {
		m, _, err := bd.Sign(sign)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = m
	}
	return out
}

func BenchmarkIngest(b *testing.B) {
	pki := e2e.NewPKI(b)
	sign := Signer(b, pki, "kommune-101").Sign
	bd, err := Typical(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	s3, noS3 := MinIO(b)
	for _, tr := range []string{"tcp", "h3"} {
		b.Run(tr, func(b *testing.B) {
			b.Run("sqlite", func(b *testing.B) {
				addr := InProcess(b, e2e.Config(b, pki)) // SQLite and the embedded S3 server, as `make run`
				ingest(b, Client(b, pki, addr, "kommune-101", tr), bd, sign)
			})
			b.Run("postgres", func(b *testing.B) {
				if noS3 != "" {
					testenv.Missing(b, noS3)
				}
				cfg := PostgresConfig(b, pki, s3)
				b.Setenv(e2e.S3SecretEnv, s3.SecretKey)
				addr := InProcess(b, cfg)
				ingest(b, Client(b, pki, addr, "kommune-101", tr), bd, sign)
			})
		})
	}
}

// ingest pushes fresh copies of bd one after another and reports the
// latency distribution. One untimed push first opens the connection (TLS or
// QUIC handshake) and warms the gateway's first-use paths.
func ingest(b *testing.B, cl *client.Client, bd *Bundle, sign func([]byte) ([]byte, error)) {
	ctx := context.Background()
	warm := signPool(b, bd, sign, 1)[0]
	if err := Push(ctx, cl, bd, warm); err != nil {
		b.Fatalf("warm-up push: %v", err)
	}
	pool := signPool(b, bd, sign, poolSize)
	b.SetBytes(bd.PartBytes() + int64(len(warm)))
	b.ReportAllocs()
	var lat []time.Duration
	for b.Loop() {
		if len(pool) == 0 {
			b.StopTimer()
			pool = signPool(b, bd, sign, poolSize)
			b.StartTimer()
		}
		m := pool[len(pool)-1]
		pool = pool[:len(pool)-1]
		t0 := time.Now()
		if err := Push(ctx, cl, bd, m); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatency(b, lat, "bundles/s")
}

// reportLatency reports p50-ms, p99-ms (nearest rank: with 20 samples the
// p99 is the slowest) and the rate per second under unit.
func reportLatency(b *testing.B, lat []time.Duration, unit string) {
	if len(lat) == 0 {
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[max(0, int(math.Ceil(p*float64(len(s))))-1)] }
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	b.ReportMetric(float64(q(0.50))/1e6, "p50-ms")
	b.ReportMetric(float64(q(0.99))/1e6, "p99-ms")
	b.ReportMetric(float64(len(s))/sum.Seconds(), unit)
}

func BenchmarkPlainPut(b *testing.B) {
	bd, err := Typical(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var parts [][]byte
	for _, p := range bd.Manifest.Parts {
		r, err := bd.Open(p.ID)
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			b.Fatal(err)
		}
		parts = append(parts, data)
	}
	b.Run("embedded", func(b *testing.B) {
		e, err := blob.StartEmbedded(b.TempDir(), "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close() })
		plainPut(b, e.Config(), parts)
	})
	s3, noS3 := MinIO(b)
	b.Run("minio", func(b *testing.B) {
		if noS3 != "" {
			testenv.Missing(b, noS3)
		}
		plainPut(b, s3.Config(), parts)
	})
}

// plainPut puts the parts, as separate objects under a fresh prefix, with
// minio-go and the options of the gateway's own Put (blob.S3.Put: unsigned
// payload, the same part size, one thread, a reader without Seek or ReadAt),
// one after another. The bucket is made (or checked) by blob.NewS3 first.
func plainPut(b *testing.B, cfg blob.S3Config, parts [][]byte) {
	ctx := context.Background()
	if _, err := blob.NewS3(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	mc, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: cfg.Secure, Region: cfg.Region,
	})
	if err != nil {
		b.Fatal(err)
	}
	opts := minio.PutObjectOptions{DisableContentSha256: true, PartSize: blob.PartSize, NumThreads: 1, ContentType: "application/octet-stream"}
	put := func() error {
		prefix := "plain/" + uuid.NewString() + "/"
		for i, p := range parts {
			r := struct{ io.Reader }{bytes.NewReader(p)}
			if _, err := mc.PutObject(ctx, cfg.Bucket, fmt.Sprintf("%s%03d", prefix, i), r, int64(len(p)), opts); err != nil {
				return err
			}
		}
		return nil
	}
	if err := put(); err != nil { // warm-up: the connection
		b.Fatal(err)
	}
	var total int64
	for _, p := range parts {
		total += int64(len(p))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := put(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatency(b, lat, "sets/s")
}

// largeFile is the bundle with the 200 MiB attachment, written once per test
// binary (the -count runs share it) into a temporary directory.
var largeFile largeCache

type largeCache struct {
	once sync.Once
	dir  string
	bd   *Bundle
	err  error
}

func (l *largeCache) get(tb testing.TB) *Bundle {
	tb.Helper()
	l.once.Do(func() {
		if l.dir, l.err = os.MkdirTemp("", "rehabgw-bench-large-"); l.err == nil {
			l.bd, l.err = Large(time.Now(), l.dir)
		}
	})
	if l.err != nil {
		tb.Fatal(l.err)
	}
	return l.bd
}

func (l *largeCache) cleanup() {
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}

func BenchmarkLargeAttachment(b *testing.B) {
	pki := e2e.NewPKI(b)
	sign := Signer(b, pki, "kommune-101").Sign
	large := largeFile.get(b)
	typical, err := Typical(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	s3, noS3 := MinIO(b)
	b.Run("embedded", func(b *testing.B) {
		// `make run`: gatewayd --data DIR --listen ADDR, the embedded
		// defaults, with the benchmark's PKI put where it would generate one.
		largePush(b, pki, large, typical, sign, func(b *testing.B) *e2e.Proc {
			data := filepath.Join(b.TempDir(), "data")
			CopyPKI(b, pki, filepath.Join(data, "pki"))
			return e2e.StartGatewaydDefaults(b, data)
		})
	})
	b.Run("postgres", func(b *testing.B) {
		if noS3 != "" {
			testenv.Missing(b, noS3)
		}
		largePush(b, pki, large, typical, sign, func(b *testing.B) *e2e.Proc {
			return e2e.StartGatewayd(b, PostgresConfig(b, pki, s3), e2e.S3SecretEnv+"="+s3.SecretKey)
		})
	})
}

// largePush pushes the large bundle once per iteration, each time to a
// fresh gatewayd process (VmHWM cannot be reset), started with the timer
// stopped. Before the measured push the process serves one typical push,
// so that its "before" is a gateway in service (connection, TLS session,
// database pool, schema caches), not one that has only just started.
func largePush(b *testing.B, pki *e2e.PKI, large, typical *Bundle, sign func([]byte) ([]byte, error), start func(*testing.B) *e2e.Proc) {
	ctx := context.Background()
	var growth, before, peak float64
	b.SetBytes(large.PartBytes())
	for range b.N {
		b.StopTimer()
		p := start(b)
		cl := Client(b, pki, p.Addr, "kommune-101", "tcp")
		if err := Push(ctx, cl, typical, signPool(b, typical, sign, 1)[0]); err != nil {
			b.Fatalf("warm-up push: %v", err)
		}
		m := signPool(b, large, sign, 1)[0]
		m0, err := ReadMemory(p.PID())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := Push(ctx, cl, large, m); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		m1, err := ReadMemory(p.PID())
		if err != nil {
			b.Fatal(err)
		}
		cl.Close()
		p.Stop()
		if g := float64(m1.HWM-m0.RSS) / 1e6; g > growth {
			growth, before, peak = g, float64(m0.RSS)/1e6, float64(m1.HWM)/1e6
		}
		b.StartTimer()
	}
	b.ReportMetric(growth, "peak-rss-growth-MB")
	b.ReportMetric(before, "rss-before-MB")
	b.ReportMetric(peak, "peak-rss-MB")
}
