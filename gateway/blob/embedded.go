package blob

// The embedded S3 server: gofakes3's S3 protocol layer over a file backend
// of our own (fileBackend, below) and a SigV4 check in front of it.
//
// Why not gofakes3's backend/s3afero (v1.2.0)? It persists, but:
//   - it holds one backend-wide mutex while it copies the request body to
//     disk, so one slow upload (a municipality pushing 200 MB over a slow line
//     streams straight through to the blob store) stalls every other Get, Put,
//     List and Ping of the gateway for its whole duration;
//   - it writes in place: a failed or interrupted upload leaves a truncated
//     object under the key, and nothing is fsynced;
//   - its metadata loader recomputes a stale ETag by hashing the metadata
//     file instead of the object (and fails the GET when the metadata file
//     is missing), so objects copied without their mtimes break.
//
// And gofakes3's own multipart uploader, used with any backend that does not
// implement gofakes3.MultipartBackend, holds every part in memory
// (io.ReadAll) and then concatenates them into one more in-memory copy at
// CompleteMultipartUpload: a 200 MB multipart upload costs 400 MB of heap.
// fileBackend implements MultipartBackend with parts on disk, so memory
// stays bounded whatever the object size.
//
// gofakes3 also checks no credentials at all; Embedded verifies every
// request's AWS SigV4 header signature against credentials generated at first
// start and kept (0600) in the data directory, so other local users cannot
// read attachments through the loopback port.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// EmbeddedBucket is the bucket the embedded server's Config names.
const EmbeddedBucket = "rehabgw"

// Embedded is an S3-compatible server on loopback storing objects as files
// under one directory, durable across restarts. Production uses an external
// store (MinIO); this is the zero-config default.
type Embedded struct {
	addr   string
	access string
	secret string
	srv    *http.Server
	done   chan struct{}
	once   sync.Once
}

// StartEmbedded serves an S3 API on addr (a loopback address such as
// "127.0.0.1:0"; anything else is refused) storing objects as files under
// dir, and returns once it accepts connections. Credentials are generated at
// the first start and kept in dir, so a client made before a restart on the
// same dir and port keeps working.
func StartEmbedded(dir, addr string) (*Embedded, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("blob: embedded address %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("blob: embedded S3 server must listen on a loopback address, not %q", addr)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob: embedded data directory: %w", err)
	}
	access, secret, err := loadCredentials(filepath.Join(dir, "credentials.json"))
	if err != nil {
		return nil, err
	}
	backend, err := openFileBackend(dir)
	if err != nil {
		return nil, err
	}
	fake := gofakes3.New(backend, gofakes3.WithTimeSkewLimit(0)) // the SigV4 check bounds skew
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("blob: embedded S3 server: %w", err)
	}
	e := &Embedded{addr: ln.Addr().String(), access: access, secret: secret, done: make(chan struct{})}
	e.srv = &http.Server{
		Handler:           e.authenticate(fake.Server()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		defer close(e.done)
		_ = e.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return e, nil // Listen returned: the kernel already accepts connections
}

// Addr is the host:port the server listens on.
func (e *Embedded) Addr() string { return e.addr }

// Config is the S3Config that reaches this server.
func (e *Embedded) Config() S3Config {
	return S3Config{
		Endpoint:     e.addr,
		AccessKey:    e.access,
		SecretKey:    e.secret,
		Bucket:       EmbeddedBucket,
		Region:       "us-east-1",
		CreateBucket: true,
	}
}

// Close stops the server: new connections are refused at once, requests in
// flight get up to five seconds, then their connections are closed.
func (e *Embedded) Close() error {
	var err error
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = e.srv.Shutdown(ctx); err != nil {
			err = e.srv.Close()
		}
		<-e.done
	})
	return err
}

// loadCredentials reads the server's credentials, creating them once.
func loadCredentials(path string) (access, secret string, err error) {
	var c struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKey == "" || c.SecretKey == "" {
			return "", "", fmt.Errorf("blob: embedded credentials %s are unreadable; remove the file to generate new ones", path)
		}
		return c.AccessKey, c.SecretKey, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("blob: embedded credentials: %w", err)
	}
	c.AccessKey = "RGW" + strings.ToUpper(randomHex(9))
	c.SecretKey = randomHex(20)
	b, _ = json.Marshal(c)
	if err := writeFileSync(path, b, 0o600); err != nil {
		return "", "", fmt.Errorf("blob: embedded credentials: %w", err)
	}
	return c.AccessKey, c.SecretKey, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}

// ---- SigV4 ----------------------------------------------------------------

const maxSkew = 15 * time.Minute

// authenticate admits only requests signed (AWS SigV4, Authorization header)
// with the server's credentials. It refuses streaming (aws-chunked) payloads,
// which gofakes3 would store verbatim, and SSE headers, which it would echo
// without encrypting anything. A signed payload hash is checked against the
// body.
func (e *Embedded) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, code, msg := e.verify(r)
		if code != "" {
			writeS3Error(w, r, status, code, msg)
			return
		}
		if ph := r.Header.Get("X-Amz-Content-Sha256"); ph != "UNSIGNED-PAYLOAD" && r.Body != nil {
			want, _ := hex.DecodeString(ph)
			r.Body = &sha256Body{rc: r.Body, h: sha256.New(), want: want}
		}
		next.ServeHTTP(w, r)
	})
}

func (e *Embedded) verify(r *http.Request) (int, string, string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return http.StatusForbidden, "AccessDenied", "signed requests only"
	}
	const algo = "AWS4-HMAC-SHA256"
	rest, ok := strings.CutPrefix(auth, algo+" ")
	if !ok {
		return http.StatusBadRequest, "AuthorizationHeaderMalformed", "only " + algo + " is supported"
	}
	var cred, signed, sig string
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signed == "" || sig == "" {
		return http.StatusBadRequest, "AuthorizationHeaderMalformed", "malformed Authorization header"
	}
	if subtle.ConstantTimeCompare([]byte(scope[0]), []byte(e.access)) != 1 {
		return http.StatusForbidden, "InvalidAccessKeyId", "unknown access key"
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || scope[1] != amzDate[:8] {
		return http.StatusForbidden, "AccessDenied", "missing or inconsistent X-Amz-Date"
	}
	if d := time.Since(t); d > maxSkew || d < -maxSkew {
		return http.StatusForbidden, "RequestTimeTooSkewed", "request time too far from server time"
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case strings.HasPrefix(payload, "STREAMING-") || strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked"):
		return http.StatusNotImplemented, "NotImplemented", "streaming (aws-chunked) payloads are not supported by the embedded store; send with DisableContentSha256"
	case payload == "UNSIGNED-PAYLOAD":
	case len(payload) == 64:
		if _, err := hex.DecodeString(payload); err != nil {
			return http.StatusBadRequest, "InvalidArgument", "malformed X-Amz-Content-Sha256"
		}
	default:
		return http.StatusBadRequest, "InvalidArgument", "missing X-Amz-Content-Sha256"
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-server-side-encryption") {
			return http.StatusNotImplemented, "NotImplemented", "the embedded store does not offer server-side encryption"
		}
	}

	names := strings.Split(signed, ";")
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n)
		ch.WriteByte(':')
		if n == "host" {
			ch.WriteString(r.Host)
		} else {
			for i, v := range r.Header.Values(n) {
				if i > 0 {
					ch.WriteByte(',')
				}
				ch.WriteString(strings.Join(strings.Fields(v), " "))
			}
		}
		ch.WriteByte('\n')
	}
	canonical := strings.Join([]string{
		r.Method,
		s3utils.EncodePath(r.URL.Path),
		strings.ReplaceAll(r.URL.Query().Encode(), "+", "%20"),
		ch.String(),
		signed,
		payload,
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := algo + "\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + e.secret)
	for _, s := range scope[1:] {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return http.StatusForbidden, "SignatureDoesNotMatch", "signature does not match"
	}
	return 0, "", ""
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// sha256Body fails the read that reaches EOF when the body does not match
// the signed payload hash, so the backend never commits it.
type sha256Body struct {
	rc   io.ReadCloser
	h    hash.Hash
	want []byte
}

func (b *sha256Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && !bytes.Equal(b.h.Sum(nil), b.want) {
		return n, gofakes3.ErrorMessage("XAmzContentSHA256Mismatch", "payload does not match X-Amz-Content-Sha256")
	}
	return n, err
}

func (b *sha256Body) Close() error { return b.rc.Close() }

func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName  xml.Name `xml:"Error"`
		Code     string   `xml:"Code"`
		Message  string   `xml:"Message"`
		Resource string   `xml:"Resource"`
	}{Code: code, Message: msg, Resource: r.URL.Path})
}

// ---- file backend -----------------------------------------------------------

// fileBackend stores each object as a plain file of its exact bytes,
// dir/buckets/BUCKET/ESCAPED-KEY, with a JSON sidecar dir/meta/BUCKET/ESCAPED-KEY
// (MD5, size, mtime, content headers). A Put streams into a temporary file
// in the bucket directory without any lock, fsyncs it, and renames it (and
// its sidecar) into place under a short lock: readers see the old object or
// the new one, never a partial one, and an interrupted upload leaves no
// object. Multipart parts are files under dir/uploads/ID/. Keys are
// %-escaped into one flat file name per object (no directories, so "a" and
// "a/b" coexist and no key can escape the bucket), which limits an escaped
// key to 255 bytes. Each List page (1,000 keys) reads and sorts the whole
// bucket directory, so a full listing is quadratic: 100,000 objects took 14 s
// here. Fine for the embedded default; many more parts belong on MinIO.
type fileBackend struct {
	buckets string
	meta    string
	uploads string
	mu      sync.Mutex // commit/delete renames, and reads of object+sidecar
}

var (
	_ gofakes3.Backend          = (*fileBackend)(nil)
	_ gofakes3.MultipartBackend = (*fileBackend)(nil)
)

const tmpPrefix = ".tmp-"

func openFileBackend(dir string) (*fileBackend, error) {
	b := &fileBackend{
		buckets: filepath.Join(dir, "buckets"),
		meta:    filepath.Join(dir, "meta"),
		uploads: filepath.Join(dir, "uploads"),
	}
	for _, d := range []string{b.buckets, b.meta} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("blob: embedded store: %w", err)
		}
	}
	// Nothing is in flight before the server starts: temporary files and
	// multipart uploads left by a crash or a stop are garbage.
	if err := os.RemoveAll(b.uploads); err != nil {
		return nil, fmt.Errorf("blob: embedded store: %w", err)
	}
	if err := os.MkdirAll(b.uploads, 0o700); err != nil {
		return nil, fmt.Errorf("blob: embedded store: %w", err)
	}
	for _, root := range []string{b.buckets, b.meta} {
		ents, _ := os.ReadDir(root)
		for _, bk := range ents {
			files, _ := os.ReadDir(filepath.Join(root, bk.Name()))
			for _, f := range files {
				if strings.HasPrefix(f.Name(), tmpPrefix) {
					_ = os.Remove(filepath.Join(root, bk.Name(), f.Name()))
				}
			}
		}
	}
	return b, nil
}

type objMeta struct {
	Size    int64             `json:"size"`
	ModTime int64             `json:"mtime_ns"`
	MD5     string            `json:"md5"`
	Headers map[string]string `json:"headers,omitempty"`
}

// escapeKey maps a key onto one file name.
func escapeKey(key string) (string, error) {
	if key == "" {
		return "", gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, "empty key")
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '~' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() > 255 {
		return "", gofakes3.ResourceError(gofakes3.ErrKeyTooLong, key)
	}
	return b.String(), nil
}

func unescapeKey(name string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] != '%' {
			b.WriteByte(name[i])
			continue
		}
		if i+2 >= len(name) {
			return "", false
		}
		v, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

func (b *fileBackend) bucketDir(bucket string) (string, error) {
	if err := gofakes3.ValidateBucketName(bucket); err != nil {
		return "", gofakes3.BucketNotFound(bucket)
	}
	d := filepath.Join(b.buckets, bucket)
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		return "", gofakes3.BucketNotFound(bucket)
	}
	return d, nil
}

func (b *fileBackend) paths(bucket, key string) (data, meta string, err error) {
	d, err := b.bucketDir(bucket)
	if err != nil {
		return "", "", err
	}
	name, err := escapeKey(key)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(d, name), filepath.Join(b.meta, bucket, name), nil
}

func (b *fileBackend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	ents, err := os.ReadDir(b.buckets)
	if err != nil {
		return nil, err
	}
	out := []gofakes3.BucketInfo{}
	for _, e := range ents {
		if !e.IsDir() || gofakes3.ValidateBucketName(e.Name()) != nil {
			continue
		}
		var created time.Time
		if info, err := e.Info(); err == nil {
			created = info.ModTime()
		}
		out = append(out, gofakes3.BucketInfo{Name: e.Name(), CreationDate: gofakes3.NewContentTime(created)})
	}
	return out, nil
}

func (b *fileBackend) CreateBucket(name string) error {
	if err := gofakes3.ValidateBucketName(name); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(b.buckets, name), 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
		}
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.meta, name), 0o700); err != nil {
		return err
	}
	syncDir(b.buckets)
	syncDir(b.meta)
	return nil
}

func (b *fileBackend) BucketExists(name string) (bool, error) {
	_, err := b.bucketDir(name)
	return err == nil, nil
}

func (b *fileBackend) DeleteBucket(name string) error {
	d, err := b.bucketDir(name)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
		}
	}
	return b.ForceDeleteBucket(name)
}

func (b *fileBackend) ForceDeleteBucket(name string) error {
	d, err := b.bucketDir(name)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.RemoveAll(d); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(b.meta, name))
}

// ListBucket lists keys in byte order, with prefix/delimiter matching and
// marker/max-keys paging.
func (b *fileBackend) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	d, err := b.bucketDir(bucket)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, err
	}
	type entry struct {
		key  string
		name string
	}
	keys := make([]entry, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		if k, ok := unescapeKey(e.Name()); ok {
			keys = append(keys, entry{k, e.Name()})
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].key < keys[j].key })

	out := gofakes3.NewObjectList()
	var match gofakes3.PrefixMatch
	var lastPrefix string
	var count int64
	i := 0
	if page.HasMarker {
		i = sort.Search(len(keys), func(i int) bool { return keys[i].key > page.Marker })
	}
	for ; i < len(keys); i++ {
		k := keys[i]
		if !prefix.Match(k.key, &match) {
			continue
		}
		if page.MaxKeys > 0 && count >= page.MaxKeys {
			if !match.CommonPrefix || match.MatchedPart != lastPrefix {
				out.IsTruncated = true
				break
			}
		}
		out.NextMarker = k.key
		if match.CommonPrefix {
			if match.MatchedPart == lastPrefix {
				continue
			}
			out.AddPrefix(match.MatchedPart)
			lastPrefix = match.MatchedPart
			count++
			continue
		}
		obj, err := b.stat(filepath.Join(d, k.name), filepath.Join(b.meta, bucket, k.name))
		if err != nil {
			continue // deleted meanwhile
		}
		out.Add(&gofakes3.Content{
			Key:          k.key,
			LastModified: gofakes3.NewContentTime(obj.modTime),
			ETag:         gofakes3.FormatETag(obj.md5),
			Size:         obj.size,
		})
		count++
	}
	if !out.IsTruncated {
		out.NextMarker = ""
	}
	return out, nil
}

type statResult struct {
	size    int64
	modTime time.Time
	md5     []byte
	headers map[string]string
}

// stat reads an object's size and sidecar. A sidecar that does not describe
// the data file (a crash between the two renames) yields a synthetic ETag.
func (b *fileBackend) stat(data, meta string) (*statResult, error) {
	st, err := os.Stat(data)
	if err != nil {
		return nil, err
	}
	return b.describe(st, meta), nil
}

func (b *fileBackend) describe(st fs.FileInfo, meta string) *statResult {
	r := &statResult{size: st.Size(), modTime: st.ModTime()}
	var m objMeta
	if raw, err := os.ReadFile(meta); err == nil && json.Unmarshal(raw, &m) == nil &&
		m.Size == st.Size() && m.ModTime == st.ModTime().UnixNano() {
		r.md5, _ = hex.DecodeString(m.MD5)
		r.headers = m.Headers
	}
	if len(r.md5) == 0 {
		s := md5.Sum([]byte(fmt.Sprintf("%d/%d", st.Size(), st.ModTime().UnixNano())))
		r.md5 = s[:]
	}
	return r
}

func (r *statResult) metadata() map[string]string {
	m := make(map[string]string, len(r.headers)+1)
	for k, v := range r.headers {
		m[k] = v
	}
	m["Last-Modified"] = r.modTime.UTC().Format(http.TimeFormat)
	return m
}

func (b *fileBackend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	data, meta, err := b.paths(bucket, key)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	st, err := b.stat(data, meta)
	b.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, gofakes3.KeyNotFound(key)
	} else if err != nil {
		return nil, err
	}
	return &gofakes3.Object{Name: key, Hash: st.md5, Metadata: st.metadata(), Size: st.size, Contents: io.NopCloser(http.NoBody)}, nil
}

func (b *fileBackend) GetObject(bucket, key string, rangeRequest *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	data, meta, err := b.paths(bucket, key)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	f, err := os.Open(data)
	var st *statResult
	if err == nil {
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil {
			st = b.describe(fi, meta)
		} else {
			f.Close()
		}
	}
	b.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, gofakes3.KeyNotFound(key)
	} else if err != nil {
		return nil, err
	}
	rng, err := rangeRequest.Range(st.size)
	if err != nil {
		f.Close()
		return nil, err
	}
	var contents io.ReadCloser = f
	if rng != nil {
		contents = struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(f, rng.Start, rng.Length), f}
	}
	return &gofakes3.Object{Name: key, Hash: st.md5, Metadata: st.metadata(), Size: st.size, Range: rng, Contents: contents}, nil
}

func (b *fileBackend) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	data, meta, err := b.paths(bucket, key)
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.Remove(data); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return gofakes3.ObjectDeleteResult{}, err
	}
	if err := os.Remove(meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return gofakes3.ObjectDeleteResult{}, err
	}
	return gofakes3.ObjectDeleteResult{}, nil
}

func (b *fileBackend) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	for _, k := range keys {
		if _, err := b.DeleteObject(bucket, k); err != nil {
			res.Error = append(res.Error, gofakes3.ErrorResult{Key: k, Code: gofakes3.ErrInternal, Message: "delete failed"})
			continue
		}
		res.Deleted = append(res.Deleted, gofakes3.ObjectID{Key: k})
	}
	return res, nil
}

func (b *fileBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// PutObject streams input into a temporary file and commits it.
func (b *fileBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	data, metaPath, err := b.paths(bucket, key)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(data), tmpPrefix)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), input)
	if err == nil && n != size {
		err = gofakes3.ErrIncompleteBody
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return gofakes3.PutObjectResult{}, err
	}
	return gofakes3.PutObjectResult{}, b.commit(tmp, h.Sum(nil), data, metaPath, meta, cond)
}

// commit fsyncs tmp and renames it and a new sidecar into place; it always
// consumes tmp.
func (b *fileBackend) commit(tmp *os.File, sum []byte, data, metaPath string, headers map[string]string, cond *gofakes3.PutConditions) (err error) {
	var metaTmp string
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
			if metaTmp != "" {
				os.Remove(metaTmp)
			}
		}
	}()
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	st, err := os.Stat(tmp.Name())
	if err != nil {
		return err
	}
	m := objMeta{Size: st.Size(), ModTime: st.ModTime().UnixNano(), MD5: hex.EncodeToString(sum), Headers: keepHeaders(headers)}
	raw, _ := json.Marshal(m)
	mf, err := os.CreateTemp(filepath.Dir(metaPath), tmpPrefix)
	if err != nil {
		return err
	}
	metaTmp = mf.Name()
	_, err = mf.Write(raw)
	if err == nil {
		err = mf.Sync()
	}
	if cerr := mf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if cond != nil {
		info := &gofakes3.ConditionalObjectInfo{}
		if old, err := b.stat(data, metaPath); err == nil {
			info.Exists, info.Hash = true, old.md5
		}
		if err := gofakes3.CheckPutConditions(cond, info); err != nil {
			return err
		}
	}
	if err := os.Rename(metaTmp, metaPath); err != nil {
		return err
	}
	metaTmp = ""
	if err := os.Rename(tmp.Name(), data); err != nil {
		return err
	}
	syncDir(filepath.Dir(metaPath))
	syncDir(filepath.Dir(data))
	return nil
}

// keepHeaders keeps the content headers and user metadata of a Put, not the
// request's own X-Amz-* headers (date, payload hash) gofakes3 passes along.
func keepHeaders(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		if k == "Content-Type" || k == "Content-Disposition" || k == "Content-Encoding" || strings.HasPrefix(k, "X-Amz-Meta-") {
			out[k] = v
		}
	}
	return out
}

// ---- multipart, parts on disk ----

type uploadInfo struct {
	Bucket  string            `json:"bucket"`
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
}

func (b *fileBackend) CreateMultipartUpload(bucket, key string, meta map[string]string) (gofakes3.UploadID, error) {
	if _, _, err := b.paths(bucket, key); err != nil {
		return "", err
	}
	id := randomHex(16)
	d := filepath.Join(b.uploads, id)
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", err
	}
	raw, _ := json.Marshal(uploadInfo{Bucket: bucket, Key: key, Headers: meta})
	if err := os.WriteFile(filepath.Join(d, "upload.json"), raw, 0o600); err != nil {
		return "", err
	}
	return gofakes3.UploadID(id), nil
}

func (b *fileBackend) upload(bucket, key string, id gofakes3.UploadID) (string, *uploadInfo, error) {
	s := string(id)
	if len(s) != 32 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", nil, gofakes3.ErrNoSuchUpload
	}
	d := filepath.Join(b.uploads, s)
	raw, err := os.ReadFile(filepath.Join(d, "upload.json"))
	if err != nil {
		return "", nil, gofakes3.ErrNoSuchUpload
	}
	var u uploadInfo
	if json.Unmarshal(raw, &u) != nil || u.Bucket != bucket || u.Key != key {
		return "", nil, gofakes3.ErrNoSuchUpload
	}
	return d, &u, nil
}

// UploadPart streams a part to dir/uploads/ID/NNNNN-MD5; its name is its
// identity, so CompleteMultipartUpload finds exactly the part the client
// names by number and ETag.
func (b *fileBackend) UploadPart(bucket, key string, id gofakes3.UploadID, partNumber int, contentLength int64, input io.Reader) (string, error) {
	d, _, err := b.upload(bucket, key, id)
	if err != nil {
		return "", err
	}
	if partNumber < 1 || partNumber > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	tmp, err := os.CreateTemp(d, tmpPrefix)
	if err != nil {
		return "", err
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), input)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != contentLength {
		err = gofakes3.ErrIncompleteBody
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(d, fmt.Sprintf("%05d-%s", partNumber, sum))); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return `"` + sum + `"`, nil
}

func (b *fileBackend) CompleteMultipartUpload(bucket, key string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	d, u, err := b.upload(bucket, key, id)
	if err != nil {
		return "", "", err
	}
	data, metaPath, err := b.paths(bucket, key)
	if err != nil {
		return "", "", err
	}
	if len(in.Parts) == 0 {
		return "", "", gofakes3.ErrorMessage(gofakes3.ErrInvalidPart, "no parts")
	}
	tmp, err := os.CreateTemp(filepath.Dir(data), tmpPrefix)
	if err != nil {
		return "", "", err
	}
	whole, etags := md5.New(), md5.New()
	fail := func(err error) (gofakes3.VersionID, string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", "", err
	}
	last := 0
	for _, p := range in.Parts {
		if p.PartNumber <= last {
			return fail(gofakes3.ErrInvalidPartOrder)
		}
		last = p.PartNumber
		sum := strings.Trim(p.ETag, `"`)
		if len(sum) != 32 || strings.Trim(sum, "0123456789abcdef") != "" {
			return fail(gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d: bad ETag", p.PartNumber))
		}
		f, err := os.Open(filepath.Join(d, fmt.Sprintf("%05d-%s", p.PartNumber, sum)))
		if err != nil {
			return fail(gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d with ETag %s not uploaded", p.PartNumber, sum))
		}
		_, err = io.Copy(io.MultiWriter(tmp, whole), f)
		f.Close()
		if err != nil {
			return fail(err)
		}
		raw, _ := hex.DecodeString(sum)
		etags.Write(raw)
	}
	if err := b.commit(tmp, whole.Sum(nil), data, metaPath, u.Headers, nil); err != nil {
		return "", "", err
	}
	_ = os.RemoveAll(d)
	return "", fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(etags.Sum(nil)), len(in.Parts)), nil
}

func (b *fileBackend) AbortMultipartUpload(bucket, key string, id gofakes3.UploadID) error {
	d, _, err := b.upload(bucket, key, id)
	if err != nil {
		return err
	}
	return os.RemoveAll(d)
}

// Listing uploads and parts is not needed by minio-go's uploader; stale
// uploads are removed at start.
func (b *fileBackend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	return nil, gofakes3.ErrNotImplemented
}

func (b *fileBackend) ListParts(bucket, object string, uploadID gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	return nil, gofakes3.ErrNotImplemented
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		syncDir(filepath.Dir(path))
	}
	return err
}
