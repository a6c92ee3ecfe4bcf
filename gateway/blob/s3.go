package blob

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// S3Config says where the part bytes live. Field names are the ones start-up
// errors name.
type S3Config struct {
	Endpoint     string // host:port, no scheme
	Secure       bool   // https
	CAFile       string // optional extra CA for the endpoint (PEM), added to the system pool
	AccessKey    string
	SecretKey    string
	Bucket       string
	Region       string // empty: asked from the store (and cached)
	SSE          bool   // server-side encryption (SSE-S3) on every Put; NewS3 fails when the store refuses it
	CreateBucket bool   // create the bucket at start when missing
}

// Tuning. PartSize bounds the memory of a Put: objects up to PartSize go out
// in one streamed PUT with no buffer at all; larger ones as a multipart upload
// through exactly one PartSize buffer (minio-go's sequential uploader, which
// Put forces by hiding io.ReaderAt and io.Seeker from it). Measured: a 200 MB
// Put grows the heap by about PartSize plus a few MiB (see
// TestPutPeakMemory).
const (
	PartSize = 16 << 20

	pingTimeout  = 5 * time.Second
	startTimeout = 20 * time.Second
	maxRetries   = 3 // minio-go's own retry count for idempotent requests
	contentType  = "application/octet-stream"
	sseProbeKey  = "rehabgw-probe/sse"
)

// S3 is a Store on an S3-compatible endpoint, through minio-go.
type S3 struct {
	client *minio.Client
	core   minio.Core
	bucket string
	sse    encrypt.ServerSide // nil when SSE is off
}

var _ Store = (*S3)(nil)

// NewS3 checks cfg, connects, makes sure the bucket exists (creating it when
// cfg.CreateBucket), and, when cfg.SSE, proves that the store accepts SSE-S3
// by writing and deleting a probe object. Errors name the setting at fault;
// an unreachable endpoint is errs.Unavailable.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, err
	}
	if cfg.Secure && cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, errs.Wrap(errs.Invalid, "blob.config", err, "blob: CAFile %q cannot be read", cfg.CAFile)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errs.E(errs.Invalid, "blob.config", "blob: CAFile %q holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.Secure,
		Transport:  tr,
		Region:     cfg.Region,
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "blob.config", err, "blob: Endpoint %q is not usable", cfg.Endpoint)
	}
	s := &S3{client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket}
	if cfg.SSE {
		s.sse = encrypt.NewSSE()
	}

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var exists bool
	for {
		exists, err = client.BucketExists(ctx, cfg.Bucket)
		// A store that answers but is still starting (MinIO's
		// XMinioServerNotInitialized, a 503) gets until the start-up
		// deadline; an endpoint that does not answer fails at once.
		if err == nil || minio.ToErrorResponse(err).StatusCode < 500 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, startErr(err, cfg, fmt.Sprintf("checking bucket %q", cfg.Bucket))
	}
	if !exists {
		if !cfg.CreateBucket {
			return nil, errs.E(errs.Invalid, "blob.config", "blob: Bucket %q does not exist on %s (create it, or set CreateBucket)", cfg.Bucket, cfg.Endpoint)
		}
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil {
			code := minio.ToErrorResponse(err).Code
			if code != minio.BucketAlreadyOwnedByYou && code != minio.BucketAlreadyExists {
				return nil, startErr(err, cfg, fmt.Sprintf("creating bucket %q", cfg.Bucket))
			}
		}
	}
	if cfg.SSE {
		if err := s.probeSSE(ctx); err != nil {
			return nil, sseErr(err, cfg)
		}
	}
	return s, nil
}

func (c S3Config) validate() error {
	bad := func(format string, args ...any) error {
		return errs.E(errs.Invalid, "blob.config", "blob: "+format, args...)
	}
	switch {
	case c.Endpoint == "":
		return bad("Endpoint is empty (want host:port)")
	case strings.Contains(c.Endpoint, "://") || strings.Contains(c.Endpoint, "/"):
		return bad("Endpoint %q must be host:port, without scheme or path (use Secure for https)", c.Endpoint)
	case c.Bucket == "":
		return bad("Bucket is empty")
	case c.AccessKey == "" || c.SecretKey == "":
		return bad("AccessKey and SecretKey are required")
	case c.CAFile != "" && !c.Secure:
		return bad("CAFile is set but Secure is false")
	}
	return nil
}

// probeSSE writes and deletes a small object with SSE-S3. MinIO without a
// KMS answers "NotImplemented" ("Server side encryption specified but KMS is
// not configured"); that becomes a start-up error naming the SSE setting
// rather than a failure on the first attachment.
func (s *S3) probeSSE(ctx context.Context) error {
	_, err := s.client.PutObject(ctx, s.bucket, sseProbeKey, strings.NewReader("sse"), 3, minio.PutObjectOptions{
		DisableContentSha256: true, ContentType: contentType, ServerSideEncryption: s.sse,
	})
	if err != nil {
		return err
	}
	return s.client.RemoveObject(ctx, s.bucket, sseProbeKey, minio.RemoveObjectOptions{})
}

// startErr turns a start-up failure into an error that names the setting
// most likely at fault: Unavailable when the endpoint does not answer (or
// answers 5xx), Invalid otherwise.
func startErr(err error, cfg S3Config, what string) error {
	if isTLSError(err) {
		return errs.Wrap(errs.Invalid, "blob.config", err, "blob: %s on %s: TLS failed: %s (check Secure and CAFile)", what, cfg.Endpoint, safeCause(err))
	}
	if isUnavailable(err) {
		return errs.Wrap(errs.Unavailable, "blob.unavailable", err, "blob: %s: S3 endpoint %s (Endpoint, Secure) is unreachable or failing: %s", what, cfg.Endpoint, safeCause(err))
	}
	resp := minio.ToErrorResponse(err)
	var hint string
	switch {
	case resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch" || resp.StatusCode == http.StatusForbidden:
		hint = "check AccessKey and SecretKey"
	case resp.Code == "AuthorizationHeaderMalformed" || strings.Contains(resp.Code, "Region"):
		hint = "check Region"
	default:
		hint = "check Endpoint, Bucket and credentials"
	}
	return errs.Wrap(errs.Invalid, "blob.config", err, "blob: %s on %s: %s (%s)", what, cfg.Endpoint, safeCause(err), hint)
}

// sseErr explains a refused SSE probe.
func sseErr(err error, cfg S3Config) error {
	if isTLSError(err) || isUnavailable(err) {
		return startErr(err, cfg, "probing SSE")
	}
	return errs.Wrap(errs.Invalid, "blob.config", err, "blob: SSE is on but %s refuses SSE-S3: %s (configure a KMS on the store, or set SSE to false)", cfg.Endpoint, safeCause(err))
}

// isTLSError reports certificate and protocol mismatches: configuration, not
// an outage.
func isTLSError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		he  x509.HostnameError
		rhe tls.RecordHeaderError
		ve  *tls.CertificateVerificationError
	)
	if errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) || errors.As(err, &rhe) || errors.As(err, &ve) {
		return true
	}
	msg := err.Error() + " " + minio.ToErrorResponse(err).Message
	return strings.Contains(msg, "server gave HTTP response to HTTPS client") || // Secure against plain HTTP
		strings.Contains(msg, "HTTP request to an HTTPS server") // plain HTTP against TLS (Go servers, MinIO)
}

// safeCause is the S3 error code and message (or the network error), which
// never hold part content, with digit runs redacted anyway.
func safeCause(err error) string {
	resp := minio.ToErrorResponse(err)
	if resp.Code != "" {
		return errs.Redact(resp.Code + ": " + resp.Message)
	}
	return errs.Redact(err.Error())
}

// Put streams exactly size bytes from r to key: objects up to PartSize in a
// single PUT, larger ones as a multipart upload through one PartSize buffer.
// The payload is sent unsigned (DisableContentSha256): integrity is the
// gateway's, which re-checks every part's SHA-256 on the way out. An error
// from r is returned as it is (keeping its Kind); a store that cannot be
// reached or answers 5xx gives errs.Unavailable. A failed multipart upload is
// aborted; a failed single PUT leaves nothing.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if size < 0 {
		return errs.E(errs.Invalid, "blob.size", "blob: put %s: negative size %d", key, size)
	}
	src := &plainReader{r: r}
	info, err := s.client.PutObject(ctx, s.bucket, key, src, size, minio.PutObjectOptions{
		DisableContentSha256: true,
		PartSize:             PartSize,
		NumThreads:           1,
		ContentType:          contentType,
		ServerSideEncryption: s.sse,
	})
	if err != nil {
		if rerr := src.result(key, size); rerr != nil {
			return rerr
		}
		return classify(err, "put", key)
	}
	if info.Size != size {
		return errs.E(errs.Other, "blob.short", "blob: put %s: stored %d bytes, want %d", key, info.Size, size)
	}
	return nil
}

// Get streams an object in one GET request; errs.NotFound when absent. The
// reader is bound to ctx: cancel ctx and reads fail. Read errors other than
// EOF are errs.Unavailable.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	body, _, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, classify(err, "get", key)
	}
	return &getReader{rc: body, key: key}, nil
}

// Delete removes key; an absent key is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return classify(err, "delete", key)
	}
	return nil
}

// List calls each for every key under prefix last modified before olderThan,
// in key order, and stops at the first error each returns.
func (s *S3) List(ctx context.Context, prefix string, olderThan time.Time, each func(key string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing when each fails
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return classify(obj.Err, "list", prefix)
		}
		if !obj.LastModified.Before(olderThan) {
			continue
		}
		if err := each(obj.Key); err != nil {
			return err
		}
	}
	return nil
}

// Ping checks that the bucket exists and answers, within pingTimeout (or
// ctx's deadline when sooner).
func (s *S3) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return classify(err, "ping", s.bucket)
	}
	if !ok {
		return errs.E(errs.Unavailable, "blob.unavailable", "blob: bucket %q does not exist", s.bucket)
	}
	return nil
}

// classify maps a minio-go error onto the gateway's kinds.
func classify(err error, op, key string) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey:
		return errs.Wrap(errs.NotFound, "blob.not_found", err, "blob: %s %s: no such object", op, key)
	case resp.Code == minio.NoSuchBucket:
		return errs.Wrap(errs.Unavailable, "blob.unavailable", err, "blob: %s %s: bucket missing", op, key)
	case isTLSError(err):
		return errs.Wrap(errs.Other, "blob.error", err, "blob: %s %s: TLS failed: %s", op, key, safeCause(err))
	case isUnavailable(err):
		return errs.Wrap(errs.Unavailable, "blob.unavailable", err, "blob: %s %s: S3 store unavailable: %s", op, key, safeCause(err))
	}
	return errs.Wrap(errs.Other, "blob.error", err, "blob: %s %s: %s", op, key, safeCause(err))
}

// isUnavailable reports network failures, timeouts, cancellation and 5xx
// answers: conditions in which nothing was stored and a retry may succeed.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return true
	}
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented { // 501 is permanent
		return true
	}
	switch resp.Code {
	case "SlowDown", "SlowDownWrite", "SlowDownRead", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
		return true
	}
	// minio-go reports a dead endpoint in a few plain errors of its own.
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "is offline") ||
		strings.Contains(msg, "EOF") && resp.Code == ""
}

// plainReader hides every interface of r but Read, so minio-go takes its
// sequential path (one part buffer) and never re-reads r, and it remembers
// r's first error so that Put can return it unchanged.
// The HTTP transport may read from its own goroutine, hence the mutex.
type plainReader struct {
	r   io.Reader
	mu  sync.Mutex
	n   int64 // bytes read
	eof bool
	err error // first error other than EOF
}

func (p *plainReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	p.n += int64(n)
	if err == io.EOF {
		p.eof = true
	} else if err != nil && p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	return n, err
}

// result is what Put learns from r: r's own error, or a short read.
func (p *plainReader) result(key string, size int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.eof && p.n < size {
		return errs.E(errs.Invalid, "blob.short_read", "blob: put %s: reader ended after %d of %d bytes", key, p.n, size)
	}
	return nil
}

// getReader classifies read errors.
type getReader struct {
	rc  io.ReadCloser
	key string
}

func (g *getReader) Read(b []byte) (int, error) {
	n, err := g.rc.Read(b)
	if err != nil && err != io.EOF {
		err = classify(err, "read", g.key)
		if errs.KindOf(err) == errs.Other {
			err = errs.Wrap(errs.Unavailable, "blob.unavailable", err, "blob: read %s: interrupted", g.key)
		}
	}
	return n, err
}

func (g *getReader) Close() error { return g.rc.Close() }
