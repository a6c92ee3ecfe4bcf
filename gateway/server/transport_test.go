package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/ident"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

// The helpers of the transport tests carry an "edge" prefix to stay clear
// of the names of the /v1 handler tests in this package.

// edgePKI generates a development PKI into a fresh temporary directory.
func edgePKI(t *testing.T, reg *registry.Registry) string {
	t.Helper()
	dir := t.TempDir()
	if err := certs.GenerateDev(dir, certs.DevOptions{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// edgeServerTLS is the server TLS configuration of a PKI directory.
func edgeServerTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	cfg, err := NewTLSConfig(TLSFiles{
		CertFile:      filepath.Join(dir, "gateway.crt"),
		KeyFile:       filepath.Join(dir, "gateway.key"),
		ClientCAFiles: []string{filepath.Join(dir, certs.DevCACert)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// edgeStart starts a server on 127.0.0.1:0 and shuts it down at cleanup.
func edgeStart(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := s.Wait(); err != nil {
			t.Errorf("wait: %v", err)
		}
	})
	return s
}

// edgeClientTLS trusts caDir's CA for the server and presents
// certDir/<leaf>.crt (none if leaf is "").
func edgeClientTLS(t *testing.T, caDir, certDir, leaf string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(caDir, certs.DevCACert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if leaf != "" {
		kp, err := tls.LoadX509KeyPair(filepath.Join(certDir, leaf+".crt"), filepath.Join(certDir, leaf+".key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg
}

// edgeClient returns an HTTP client over "tcp" or "h3".
func edgeClient(t *testing.T, transport string, cfg *tls.Config) *http.Client {
	t.Helper()
	var rt http.RoundTripper
	switch transport {
	case "tcp":
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	case "h3":
		tr := &http3.Transport{TLSClientConfig: cfg, QUICConfig: &quic.Config{HandshakeIdleTimeout: 3 * time.Second}}
		t.Cleanup(func() { _ = tr.Close() })
		rt = tr
	default:
		t.Fatalf("transport %q", transport)
	}
	return &http.Client{Transport: rt, Timeout: 10 * time.Second}
}

// edgeWho is what the test route /who answers.
type edgeWho struct {
	CVR, UID, Org, CertSHA256 string
	Transport                 string
	Proto                     string
	HandshakeComplete         bool
	RequestID                 string
}

// edgeHandler builds the handler the transport tests serve: the shared
// chain around a mux with /who, the health endpoints and /metrics.
func edgeHandler(reg *registry.Registry, m *Metrics, log *zap.Logger, calls *atomic.Int64, checks map[string]func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /who", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		c, ok := CallerFrom(r.Context())
		if !ok {
			http.Error(w, "no caller", 500)
			return
		}
		_ = json.NewEncoder(w).Encode(edgeWho{
			CVR: c.Identity.CVR, UID: c.Identity.UID, Org: c.Org.ID, CertSHA256: c.CertSHA256,
			Transport: Transport(r), Proto: r.Proto, HandshakeComplete: r.TLS.HandshakeComplete,
			RequestID: RequestID(r.Context()),
		})
	})
	healthz, readyz := Health(checks)
	mux.Handle("GET /healthz", healthz)
	mux.Handle("GET /readyz", readyz)
	mux.Handle("GET /metrics", m.Handler())
	return Chain(mux, reg, m, log)
}

func edgeCertSHA256(t *testing.T, path string) string {
	t.Helper()
	_, chain, err := certs.LoadKeyPair(path, strings.TrimSuffix(path, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(chain[0].Raw)
	return hex.EncodeToString(sum[:])
}

// edgeUnusedCVR returns a valid CVR number that no organisation has.
func edgeUnusedCVR(t *testing.T, reg *registry.Registry) string {
	t.Helper()
	for n := 87654320; n < 87664320; n++ {
		s := strconv.Itoa(n)
		if _, taken := reg.ByCVR(s); ident.ValidCVR(s) && !taken {
			return s
		}
	}
	t.Fatal("no unused CVR found")
	return ""
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestTransports(t *testing.T) {
	reg := registry.Default()
	pki := edgePKI(t, nil)
	otherPKI := edgePKI(t, nil) // another CA with the same identities
	unknownCVR := edgeUnusedCVR(t, reg)

	core, logs := observer.New(zapcore.InfoLevel)
	metrics := NewMetrics(prometheus.NewRegistry())
	var calls atomic.Int64
	srv := edgeStart(t, Config{
		TLS:     edgeServerTLS(t, pki),
		Handler: edgeHandler(reg, metrics, zap.New(core), &calls, map[string]func(context.Context) error{"store": func(context.Context) error { return nil }}),
	})
	base := "https://" + srv.Addr()
	_, port, _ := net.SplitHostPort(srv.Addr())

	for _, transport := range []string{"tcp", "h3"} {
		t.Run("ok/identity/"+transport, func(t *testing.T) {
			for _, tc := range []struct{ leaf, org, cvr string }{
				{"kommune-101", "kommune-101", mustOrg(t, reg, "kommune-101").CVR},
				{"region-1084", "region-1084", mustOrg(t, reg, "region-1084").CVR},
				{"operator", registry.OperatorID, mustOrg(t, reg, registry.OperatorID).CVR},
			} {
				c := edgeClient(t, transport, edgeClientTLS(t, pki, pki, tc.leaf))
				resp, err := c.Get(base + "/who")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%s: status %d: %s", tc.leaf, resp.StatusCode, body)
				}
				var who edgeWho
				if err := json.Unmarshal(body, &who); err != nil {
					t.Fatal(err)
				}
				want := edgeWho{
					CVR: tc.cvr, UID: "rehabgw-dev-" + tc.leaf, Org: tc.org,
					CertSHA256: edgeCertSHA256(t, filepath.Join(pki, tc.leaf+".crt")),
					Transport:  transport, HandshakeComplete: true, RequestID: who.RequestID,
				}
				switch transport {
				case "tcp":
					want.Proto = "HTTP/2.0"
				case "h3":
					want.Proto = "HTTP/3.0"
				}
				if who != want {
					t.Errorf("%s: got %+v\nwant %+v", tc.leaf, who, want)
				}
				if got := resp.Header.Get(RequestIDHeader); got != who.RequestID || !requestIDPattern.MatchString(got) {
					t.Errorf("X-Request-ID %q, handler saw %q", got, who.RequestID)
				}
				altSvc := resp.Header.Get("Alt-Svc")
				switch transport {
				case "tcp":
					if want := `h3=":` + port + `"; ma=86400`; altSvc != want {
						t.Errorf("Alt-Svc over TCP = %q, want %q", altSvc, want)
					}
				case "h3":
					if altSvc != "" {
						t.Errorf("Alt-Svc over HTTP/3 = %q, want none", altSvc)
					}
				}
			}
		})

		// Over TLS 1.3 on TCP the client's handshake completes before the
		// server checks the certificate; the server's alert then either
		// reaches the request, or the client finds the connection already
		// closed (HTTP/2's preface write fails, or its first request).
		h2Closed := []string{"http2: client conn could not be established", "broken pipe", "connection reset by peer"}
		handshakeFails := func(t *testing.T, cfg *tls.Config, want ...string) {
			t.Helper()
			before := calls.Load()
			c := edgeClient(t, transport, cfg)
			resp, err := c.Get(base + "/who")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("request succeeded with status %d; want a failed handshake", resp.StatusCode)
			}
			if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(err.Error(), w) }) {
				t.Errorf("err %v, want one of %q", err, want)
			}
			if calls.Load() != before {
				t.Error("the handler was called")
			}
		}
		t.Run("fail/no-client-certificate/"+transport, func(t *testing.T) {
			handshakeFails(t, edgeClientTLS(t, pki, "", ""), append(h2Closed, "certificate required")...)
		})
		t.Run("fail/certificate-of-another-ca/"+transport, func(t *testing.T) {
			handshakeFails(t, edgeClientTLS(t, pki, otherPKI, "kommune-101"), append(h2Closed, "unknown certificate authority")...)
		})
		// Certificates from the gateway's CA whose subject names no
		// registered organisation: 403, but the health endpoints and the
		// metrics take any verified certificate.
		for name, subject := range map[string]pkix.Name{
			"unknown-cvr": {CommonName: "Stranger", SerialNumber: "CVR:" + unknownCVR + "-UID:stranger-1"},
			"no-identity": {CommonName: "Nobody"},
			"malformed":   {CommonName: "Person", SerialNumber: "PID:9208-2002-2-123456789012"},
			"bad-cvr":     {CommonName: "Typo", SerialNumber: "CVR:12345678-UID:x"},
		} {
			t.Run("fail/"+name+"/"+transport, func(t *testing.T) {
				before := calls.Load()
				c := edgeClient(t, transport, edgeIssueTLS(t, pki, subject))
				resp, err := c.Get(base + "/who")
				if err != nil {
					t.Fatal(err)
				}
				p := edgeDecodeProblem(t, resp)
				if resp.StatusCode != 403 || p.Code != CodeUnknownOrganisation || p.Status != 403 ||
					p.Type != ProblemTypeBase+CodeUnknownOrganisation || p.RequestID != resp.Header.Get(RequestIDHeader) {
					t.Errorf("status %d problem %+v", resp.StatusCode, p)
				}
				if calls.Load() != before {
					t.Error("the handler was called")
				}
				for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
					resp, err := c.Get(base + path)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("%s: status %d", path, resp.StatusCode)
					}
				}
			})
		}
	}

	t.Run("ok/http1/tcp", func(t *testing.T) {
		cfg := edgeClientTLS(t, pki, pki, "kommune-751")
		cfg.NextProtos = []string{"http/1.1"}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		defer c.CloseIdleConnections()
		resp, err := c.Get(base + "/who")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 1 || resp.Header.Get("Alt-Svc") == "" {
			t.Errorf("HTTP/1.1: status %d proto %s Alt-Svc %q", resp.StatusCode, resp.Proto, resp.Header.Get("Alt-Svc"))
		}
	})

	// TLS 1.2 is refused over TCP. (QUIC is TLS 1.3 by definition, RFC 9001;
	// crypto/tls refuses a QUIC configuration below 1.3 on either side.)
	t.Run("fail/tls12/tcp", func(t *testing.T) {
		before := calls.Load()
		cfg := edgeClientTLS(t, pki, pki, "kommune-101")
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		resp, err := edgeClient(t, "tcp", cfg).Get(base + "/who")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("TLS 1.2 accepted: status %d", resp.StatusCode)
		}
		if !strings.Contains(err.Error(), "protocol version") || calls.Load() != before {
			t.Errorf("err %v", err)
		}
	})

	t.Run("ok/metrics-and-access-log", func(t *testing.T) {
		c := edgeClient(t, "h3", edgeClientTLS(t, pki, pki, "kommune-101"))
		resp, err := c.Get(base + "/who?cpr=0101011234")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp, err = edgeClient(t, "tcp", edgeClientTLS(t, pki, pki, "operator")).Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`rehabgw_http_requests_total{method="GET",route="GET /who",status="200",transport="h3"}`,
			`rehabgw_http_requests_total{method="GET",route="GET /who",status="200",transport="tcp"}`,
			`rehabgw_http_requests_total{method="GET",route="GET /who",status="403",transport="h3"}`,
			`rehabgw_http_request_duration_seconds_bucket{method="GET",route="GET /who",transport="h3",le="+Inf"}`,
		} {
			if !strings.Contains(string(text), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		entries := logs.FilterMessage("request").All()
		if len(entries) == 0 {
			t.Fatal("no access log entries")
		}
		seen := map[string]bool{}
		for _, e := range entries {
			m := e.ContextMap()
			for _, k := range []string{"request_id", "org", "route", "method", "status", "bytes", "duration", "transport"} {
				if _, ok := m[k]; !ok {
					t.Errorf("log entry %v lacks %q", m, k)
				}
			}
			if len(m) != 8 {
				t.Errorf("log entry has unexpected keys: %v", m)
			}
			seen[fmt.Sprint(m["transport"], " ", m["org"], " ", m["route"], " ", m["status"])] = true
			if strings.Contains(fmt.Sprint(m), "0101011234") {
				t.Errorf("a query value reached the log: %v", m)
			}
		}
		for _, want := range []string{"h3 kommune-101 GET /who 200", "tcp kommune-101 GET /who 200", "h3  GET /who 403"} {
			if !seen[want] {
				t.Errorf("no access log entry %q in %v", want, seen)
			}
		}
	})
}

// edgeIssueTLS issues, with caDir's CA, a client certificate with the
// given subject and returns a client configuration presenting it.
func edgeIssueTLS(t *testing.T, caDir string, subject pkix.Name) *tls.Config {
	t.Helper()
	caKey, caChain, err := certs.LoadKeyPair(filepath.Join(caDir, certs.DevCACert), filepath.Join(caDir, certs.DevCAKey))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caChain[0], key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := edgeClientTLS(t, caDir, "", "")
	cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
	return cfg
}

func edgeDecodeProblem(t *testing.T, resp *http.Response) Problem {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != ProblemContentType {
		t.Errorf("Content-Type %q", ct)
	}
	var p Problem
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOrg(t *testing.T, reg *registry.Registry, id string) *registry.Organisation {
	t.Helper()
	o, ok := reg.ByID(id)
	if !ok {
		t.Fatalf("no organisation %s", id)
	}
	return o
}

// TestZeroRTT proves that the HTTP/3 listener does not accept early data.
// A client that holds a session ticket from an earlier connection sends a
// request as 0-RTT (http3.MethodGet0RTT over a DialAddrEarly connection).
// As a control, the same client against an http3.Server with quic-go's
// default QUIC configuration has its early data accepted (the connection
// reports Used0RTT); the gateway's server resumes the session but refuses
// early data (Used0RTT false) and handles the request only after the
// handshake.
func TestZeroRTT(t *testing.T) {
	pki := edgePKI(t, nil)
	serverTLS := edgeServerTLS(t, pki)

	type seen struct{ handshakeComplete, didResume bool }
	record := func(ch chan<- seen) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ch <- seen{r.TLS.HandshakeComplete, r.TLS.DidResume}
			_, _ = io.WriteString(w, "ok")
		})
	}

	// attempt does a full handshake, then a 0-RTT attempt on a new
	// connection with the ticket of the first; it returns what the handler
	// saw for the second request and whether that connection used 0-RTT.
	attempt := func(t *testing.T, addr string, ch <-chan seen) (seen, bool) {
		t.Helper()
		cfg := edgeClientTLS(t, pki, pki, "kommune-101")
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		var mu sync.Mutex
		var conns []*quic.Conn
		newTransport := func() *http3.Transport {
			return &http3.Transport{
				TLSClientConfig: cfg,
				Dial: func(ctx context.Context, a string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
					c, err := quic.DialAddrEarly(ctx, a, tc, qc)
					if err == nil {
						mu.Lock()
						conns = append(conns, c)
						mu.Unlock()
					}
					return c, err
				},
			}
		}
		get := func(tr *http3.Transport, method string) {
			req, _ := http.NewRequest(method, "https://"+addr+"/", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := tr.RoundTrip(req.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		tr1 := newTransport()
		get(tr1, http.MethodGet)
		first := <-ch
		if !first.handshakeComplete || first.didResume {
			t.Fatalf("first request: %+v", first)
		}
		// Wait until the first connection's session ticket is cached.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, ok := cfg.ClientSessionCache.Get(quicSessionKey(addr)); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no session ticket received")
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = tr1.Close()

		tr2 := newTransport()
		defer tr2.Close()
		get(tr2, http3.MethodGet0RTT)
		second := <-ch
		mu.Lock()
		used := conns[len(conns)-1].ConnectionState().Used0RTT
		mu.Unlock()
		return second, used
	}

	t.Run("control/quic-go-default-accepts-0rtt", func(t *testing.T) {
		ch := make(chan seen, 2)
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		h3 := &http3.Server{TLSConfig: serverTLS, Handler: record(ch)} // QUICConfig nil: 0-RTT on
		go func() { _ = h3.Serve(udp) }()
		defer h3.Close()
		got, used := attempt(t, udp.LocalAddr().String(), ch)
		// Whether the handler runs before the handshake completes is a race
		// on loopback; that the server accepted early data is not.
		if !got.didResume || !used {
			t.Fatalf("control server: %+v, Used0RTT %v; want 0-RTT accepted (the test cannot detect 0-RTT otherwise)", got, used)
		}
	})

	t.Run("gateway/refuses-0rtt", func(t *testing.T) {
		ch := make(chan seen, 2)
		srv := edgeStart(t, Config{TLS: serverTLS, Handler: record(ch)})
		got, used := attempt(t, srv.Addr(), ch)
		if !got.didResume {
			t.Errorf("the session was not resumed, so 0-RTT was never possible: %+v", got)
		}
		if !got.handshakeComplete || used {
			t.Errorf("the gateway handled a request as early data: %+v, Used0RTT %v", got, used)
		}
	})

	t.Run("config", func(t *testing.T) {
		s, err := New(Config{Listen: "127.0.0.1:0", TLS: serverTLS, Handler: http.NotFoundHandler()})
		if err != nil {
			t.Fatal(err)
		}
		if s.quicConfig().Allow0RTT {
			t.Error("quic.Config.Allow0RTT is true")
		}
	})

	t.Run("refuse-early-data-middleware", func(t *testing.T) {
		h := RefuseEarlyData(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("handler called") }))
		r, _ := http.NewRequest("GET", "https://x/", nil)
		r.TLS = &tls.ConnectionState{HandshakeComplete: false}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusTooEarly || !strings.Contains(w.Body.String(), `"code":"http.too_early"`) {
			t.Errorf("status %d body %s", w.Code, w.Body.String())
		}
	})
}

// quicSessionKey is the key quic-go's client uses in the TLS session cache:
// the server name (here the IP address) of the dial.
func quicSessionKey(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

func TestLimitsIdenticalOnBothTransports(t *testing.T) {
	pki := edgePKI(t, nil)
	srv := edgeStart(t, Config{
		TLS: edgeServerTLS(t, pki), Handler: http.NotFoundHandler(),
		ReadHeaderTimeout: 7 * time.Second, IdleTimeout: 90 * time.Second, MaxHeaderBytes: 32 << 10,
	})
	q := srv.quicConfig()
	if srv.tcp.ReadHeaderTimeout != 7*time.Second || q.HandshakeIdleTimeout != 7*time.Second {
		t.Errorf("read header / handshake: tcp %v quic %v", srv.tcp.ReadHeaderTimeout, q.HandshakeIdleTimeout)
	}
	if srv.tcp.IdleTimeout != 90*time.Second || srv.h3.IdleTimeout != 90*time.Second || q.MaxIdleTimeout != 90*time.Second {
		t.Errorf("idle: tcp %v h3 %v quic %v", srv.tcp.IdleTimeout, srv.h3.IdleTimeout, q.MaxIdleTimeout)
	}
	if srv.tcp.MaxHeaderBytes != 32<<10 || srv.h3.MaxHeaderBytes != 32<<10 {
		t.Errorf("header bytes: tcp %d h3 %d", srv.tcp.MaxHeaderBytes, srv.h3.MaxHeaderBytes)
	}
	if srv.tcp.HTTP2.MaxConcurrentStreams != DefaultMaxConcurrentStreams || q.MaxIncomingStreams != DefaultMaxConcurrentStreams {
		t.Errorf("streams: h2 %d quic %d", srv.tcp.HTTP2.MaxConcurrentStreams, q.MaxIncomingStreams)
	}
	if srv.h3.TLSConfig != srv.cfg.TLS || srv.tcp.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert ||
		srv.tcp.TLSConfig.ClientCAs != srv.cfg.TLS.ClientCAs || srv.tcp.TLSConfig.MinVersion != tls.VersionTLS13 {
		t.Error("the transports do not share the TLS configuration")
	}

	// A header block above the limit is refused on both transports (HTTP/2
	// answers with a GOAWAY, HTTP/3 with 431); one below it passes.
	for _, transport := range []string{"tcp", "h3"} {
		c := edgeClient(t, transport, edgeClientTLS(t, pki, pki, "kommune-101"))
		for _, size := range []int{20 << 10, 40 << 10} {
			req, _ := http.NewRequest("GET", "https://"+srv.Addr()+"/", nil)
			req.Header.Set("X-Big", strings.Repeat("a", size))
			resp, err := c.Do(req)
			status := 0
			if err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			switch {
			case size < 32<<10 && status != http.StatusNotFound:
				t.Errorf("%s: header block of %d bytes: status %d, err %v", transport, size, status, err)
			case size > 32<<10 && status != http.StatusRequestHeaderFieldsTooLarge && err == nil:
				t.Errorf("%s: header block of %d bytes: status %d", transport, size, status)
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	pki := edgePKI(t, nil)
	good := edgeServerTLS(t, pki)
	weak := good.Clone()
	weak.MinVersion = tls.VersionTLS12
	optional := good.Clone()
	optional.ClientAuth = tls.VerifyClientCertIfGiven
	for name, cfg := range map[string]Config{
		"fail/no-listen":       {TLS: good, Handler: http.NotFoundHandler()},
		"fail/bad-listen":      {Listen: "nonsense", TLS: good, Handler: http.NotFoundHandler()},
		"fail/no-tls":          {Listen: "127.0.0.1:0", Handler: http.NotFoundHandler()},
		"fail/tls12":           {Listen: "127.0.0.1:0", TLS: weak, Handler: http.NotFoundHandler()},
		"fail/optional-client": {Listen: "127.0.0.1:0", TLS: optional, Handler: http.NotFoundHandler()},
		"fail/no-handler":      {Listen: "127.0.0.1:0", TLS: good},
		"fail/negative":        {Listen: "127.0.0.1:0", TLS: good, Handler: http.NotFoundHandler(), IdleTimeout: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); err == nil {
				t.Error("New accepted the configuration")
			}
		})
	}
	t.Run("ok/defaults", func(t *testing.T) {
		s, err := New(Config{Listen: "127.0.0.1:0", TLS: good, Handler: http.NotFoundHandler()})
		if err != nil {
			t.Fatal(err)
		}
		if s.cfg.ReadHeaderTimeout != 10*time.Second || s.cfg.IdleTimeout != 120*time.Second || s.cfg.MaxHeaderBytes != DefaultMaxHeaderBytes {
			t.Errorf("defaults: %+v", s.cfg)
		}
	})
	t.Run("fail/tls-files", func(t *testing.T) {
		if _, err := NewTLSConfig(TLSFiles{CertFile: filepath.Join(pki, "gateway.crt"), KeyFile: filepath.Join(pki, "gateway.key")}); err == nil {
			t.Error("no client CAs accepted")
		}
		if _, err := NewTLSConfig(TLSFiles{CertFile: filepath.Join(pki, "kommune-101.crt"), KeyFile: filepath.Join(pki, "kommune-101.key"),
			ClientCAFiles: []string{filepath.Join(pki, certs.DevCACert)}}); err == nil || !strings.Contains(err.Error(), "serverAuth") {
			t.Errorf("a client-only certificate as server certificate: %v", err)
		}
		if _, err := NewTLSConfig(TLSFiles{CertFile: filepath.Join(pki, "gateway.crt"), KeyFile: filepath.Join(pki, "kommune-101.key"),
			ClientCAFiles: []string{filepath.Join(pki, certs.DevCACert)}}); err == nil {
			t.Error("a mismatched key accepted")
		}
		if _, err := NewTLSConfig(TLSFiles{CertFile: filepath.Join(pki, "gateway.crt"), KeyFile: filepath.Join(pki, "gateway.key"),
			ClientCAFiles: []string{filepath.Join(pki, "gateway.key")}}); err == nil {
			t.Error("a key file as trust store accepted")
		}
	})
}

func TestStartSamePortAndShutdown(t *testing.T) {
	pki := edgePKI(t, nil)
	s, err := New(Config{Listen: "127.0.0.1:0", TLS: edgeServerTLS(t, pki), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, Transport(r))
	})})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Error("Addr before Start")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start accepted")
	}
	addr := s.Addr()
	_, port, _ := net.SplitHostPort(addr)
	if port == "0" || port == "" {
		t.Fatalf("Addr %q", addr)
	}
	// Both ports are taken by the server.
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Error("TCP port not bound")
	}
	if c, err := net.ListenPacket("udp", addr); err == nil {
		c.Close()
		t.Error("UDP port not bound")
	}
	for _, transport := range []string{"tcp", "h3"} {
		c := edgeClient(t, transport, edgeClientTLS(t, pki, pki, "kommune-101"))
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != transport {
			t.Errorf("got %q over %s", b, transport)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	// Both sockets are released.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("TCP port still bound: %v", err)
	} else {
		l.Close()
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Errorf("UDP port still bound: %v", err)
	} else {
		pc.Close()
	}
}
