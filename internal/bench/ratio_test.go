package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
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

// BenchmarkIngestVsPut measures the goal — a full ingest (validate,
// verify, countersign, store, commit) costs at most 2x a plain minio-go
// PutObject of the same bytes to the same S3 server — as a PAIRED
// measurement: every iteration does one plain put of the typical bundle's
// parts and one push of the bundle, to the same server the gateway writes
// to, so machine-load drift on shared cores hits both alike. It reports the
// medians of both and the ratio of the medians ("ratio", goal <= 2).
func BenchmarkIngestVsPut(b *testing.B) {
	pki := e2e.NewPKI(b)
	sign := Signer(b, pki, "kommune-101").Sign
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
		data, _ := io.ReadAll(r)
		parts = append(parts, data)
	}
	b.Run("sqlite+embedded", func(b *testing.B) {
		e, err := blob.StartEmbedded(b.TempDir(), "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close() })
		s3 := e.Config()
		cfg := e2e.Config(b, pki)
		e2e.UseS3(cfg, s3.Endpoint, s3.AccessKey, s3.Bucket)
		b.Setenv(e2e.S3SecretEnv, s3.SecretKey)
		paired(b, Client(b, pki, InProcess(b, cfg), "kommune-101", "tcp"), s3, bd, parts, sign)
	})
	b.Run("postgres+minio", func(b *testing.B) {
		s3, noS3 := MinIO(b)
		if noS3 != "" {
			testenv.Missing(b, noS3)
		}
		cfg := PostgresConfig(b, pki, s3)
		b.Setenv(e2e.S3SecretEnv, s3.SecretKey)
		paired(b, Client(b, pki, InProcess(b, cfg), "kommune-101", "tcp"), s3.Config(), bd, parts, sign)
	})
}

func paired(b *testing.B, cl *client.Client, s3 blob.S3Config, bd *Bundle, parts [][]byte, sign func([]byte) ([]byte, error)) {
	ctx := context.Background()
	mc, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Secure: s3.Secure, Region: s3.Region})
	if err != nil {
		b.Fatal(err)
	}
	opts := minio.PutObjectOptions{DisableContentSha256: true, PartSize: blob.PartSize, NumThreads: 1, ContentType: "application/octet-stream"}
	put := func() error {
		prefix := "plain/" + uuid.NewString() + "/"
		for i, p := range parts {
			if _, err := mc.PutObject(ctx, s3.Bucket, fmt.Sprintf("%s%03d", prefix, i), struct{ io.Reader }{bytes.NewReader(p)}, int64(len(p)), opts); err != nil {
				return err
			}
		}
		return nil
	}
	warm := signPool(b, bd, sign, 1)[0]
	if err := Push(ctx, cl, bd, warm); err != nil {
		b.Fatalf("warm-up push: %v", err)
	}
	if err := put(); err != nil {
		b.Fatalf("warm-up put: %v", err)
	}
	pool := signPool(b, bd, sign, poolSize)
	var plain, full []time.Duration
	for b.Loop() {
		if len(pool) == 0 {
			b.StopTimer()
			pool = signPool(b, bd, sign, poolSize)
			b.StartTimer()
		}
		m := pool[len(pool)-1]
		pool = pool[:len(pool)-1]
		t0 := time.Now()
		if err := put(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := Push(ctx, cl, bd, m); err != nil {
			b.Fatal(err)
		}
		plain = append(plain, t1.Sub(t0))
		full = append(full, time.Since(t1))
	}
	med := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2]) / 1e6
	}
	b.ReportMetric(med(plain), "put-p50-ms")
	b.ReportMetric(med(full), "ingest-p50-ms")
	b.ReportMetric(med(full)/med(plain), "ratio")
}
