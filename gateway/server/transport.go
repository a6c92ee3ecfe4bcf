// Package server is the gateway's HTTP edge: one http.Handler served over
// HTTPS (HTTP/1.1 and HTTP/2 on TCP) and HTTP/3 (QUIC on UDP) on the same
// port, with identical mutual TLS and identical limits; the identity
// middleware that turns the verified client certificate into a Caller; RFC
// 9457 problem responses mapped from errs.Kind in one place; request IDs,
// the access log, Prometheus metrics and the health endpoints; and the /v1
// handlers (api.go).
//
// # Transports
//
// New and Start bind TCP first (port 0 picks a free port), then UDP on the
// same port. Both listeners use the tls.Config from NewTLSConfig: TLS 1.3
// only, a client certificate required and verified against the configured
// client CAs. Responses over TCP advertise HTTP/3 with
// `Alt-Svc: h3=":<port>"; ma=86400`.
//
// # 0-RTT
//
// quic-go's http3.Server accepts 0-RTT (replayable early data) when it is
// given no QUIC configuration. The gateway refuses it in three layers: the
// quic.Config has Allow0RTT false (session tickets never permit early data),
// the QUIC listener is a non-early one (quic.Transport.Listen: connections
// reach the HTTP/3 server only after the handshake completed), and
// RefuseEarlyData answers 425 Too Early to any request whose TLS handshake
// is not complete. TLS over TCP never uses early data in crypto/tls.
//
// # Middleware order
//
// Chain assembles the layers every route shares, outermost first:
// request ID, access log, metrics, Identify, route recording, then the mux.
// Server puts RefuseEarlyData in front of whatever handler it serves.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

// Default limits, used when the Config field is zero.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	// DefaultMaxConcurrentStreams bounds the concurrent requests of one
	// connection: HTTP/2 MaxConcurrentStreams and QUIC MaxIncomingStreams.
	DefaultMaxConcurrentStreams = 100
	// AltSvcMaxAge is the ma= of the Alt-Svc header, in seconds.
	AltSvcMaxAge = 86400
)

// TLSFiles names the PEM files of the server's key pair and of the trust
// store for client certificates.
type TLSFiles struct {
	CertFile, KeyFile string   // server certificate chain (leaf first) and its key
	ClientCAFiles     []string // CA certificates that issue client certificates
}

// NewTLSConfig builds the server TLS configuration shared by both
// transports: TLS 1.3 only, tls.RequireAndVerifyClientCert against the CA
// certificates of f.ClientCAFiles, the key pair of f.CertFile/f.KeyFile
// (read strictly by package certs; the leaf must be valid for server
// authentication), and ALPN h2 and http/1.1. The HTTP/3 listener uses a
// clone with ALPN h3.
func NewTLSConfig(f TLSFiles) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("server: TLS certificate and key files are required")
	}
	if len(f.ClientCAFiles) == 0 {
		return nil, errors.New("server: at least one client CA file is required (mutual TLS is mandatory)")
	}
	key, chain, err := certs.LoadKeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	leaf := chain[0]
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) &&
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, fmt.Errorf("server: certificate in %s is not valid for TLS server authentication (no serverAuth extended key usage)", f.CertFile)
	}
	pool, _, err := certs.LoadPool(f.ClientCAFiles...)
	if err != nil {
		return nil, fmt.Errorf("server: client CAs: %w", err)
	}
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		Certificates: []tls.Certificate{{Certificate: der, PrivateKey: key, Leaf: leaf}},
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// Config configures the listeners. Both transports serve the same Handler
// with the same TLS configuration and the same limits.
type Config struct {
	// Listen is host:port, e.g. "127.0.0.1:8443": the same port for TCP
	// (HTTPS) and UDP (HTTP/3). Port 0 picks a free port (see Server.Addr).
	Listen  string
	TLS     *tls.Config // built by NewTLSConfig
	Handler http.Handler

	// ReadHeaderTimeout bounds the TLS handshake and reading the request
	// headers over TCP, and the QUIC handshake (HandshakeIdleTimeout) over
	// HTTP/3. Default 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle connections: http.Server.IdleTimeout over TCP,
	// http3.Server.IdleTimeout and quic.Config.MaxIdleTimeout over HTTP/3.
	// Default 120 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request header block on both transports.
	// Default 64 KiB. (net/http adds 4 KiB of slack; HTTP/3 does not.)
	MaxHeaderBytes int

	Logger *zap.Logger // nil: no logging
}

// Server serves one handler over HTTPS and HTTP/3.
type Server struct {
	cfg Config
	log *zap.Logger

	mu      sync.Mutex
	started bool
	addr    string
	tcpLn   net.Listener
	udpConn *net.UDPConn
	quicTr  *quic.Transport
	quicLn  *quic.Listener
	tcp     *http.Server
	h3      *http3.Server
	done    chan struct{} // closed when both serve loops have returned
	errMu   sync.Mutex
	err     error // first serve error other than http.ErrServerClosed
}

// New validates cfg, applies the defaults, and returns a server that is not
// yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		return nil, errors.New("server: Listen address is required")
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("server: Listen %q: %w", cfg.Listen, err)
	}
	if cfg.TLS == nil {
		return nil, errors.New("server: TLS configuration is required (build it with NewTLSConfig)")
	}
	if cfg.TLS.MinVersion < tls.VersionTLS13 {
		return nil, errors.New("server: TLS configuration must require TLS 1.3 (MinVersion)")
	}
	if cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert || cfg.TLS.ClientCAs == nil {
		return nil, errors.New("server: TLS configuration must require and verify client certificates against ClientCAs")
	}
	if cfg.Handler == nil {
		return nil, errors.New("server: Handler is required")
	}
	if cfg.ReadHeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxHeaderBytes < 0 {
		return nil, errors.New("server: timeouts and MaxHeaderBytes must not be negative")
	}
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Server{cfg: cfg, log: log.Named("server")}, nil
}

// quicConfig is the QUIC configuration of the HTTP/3 listener. Allow0RTT is
// false: 0-RTT data can be replayed by an attacker, and a push must never be
// accepted twice on the strength of one client's handshake.
func (s *Server) quicConfig() *quic.Config {
	return &quic.Config{
		Allow0RTT:            false,
		HandshakeIdleTimeout: s.cfg.ReadHeaderTimeout,
		MaxIdleTimeout:       s.cfg.IdleTimeout,
		MaxIncomingStreams:   DefaultMaxConcurrentStreams,
	}
}

// bindAttempts is how often Start tries to find a port free on both TCP and
// UDP when Listen has port 0.
const bindAttempts = 10

// Start binds TCP, then UDP on the same port, and starts serving both in the
// background. It returns once both sockets are bound, so clients can connect
// at once. When Listen has port 0 and the UDP port of the picked TCP port is
// taken, Start retries with another port.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	host, port, _ := net.SplitHostPort(s.cfg.Listen)
	var (
		tcpLn net.Listener
		udp   *net.UDPConn
		err   error
	)
	for attempt := 0; ; attempt++ {
		tcpLn, err = net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("server: listen tcp %s: %w", s.cfg.Listen, err)
		}
		bound := tcpLn.Addr().(*net.TCPAddr)
		var uaddr *net.UDPAddr
		uaddr, err = net.ResolveUDPAddr("udp", net.JoinHostPort(host, strconv.Itoa(bound.Port)))
		if err == nil {
			udp, err = net.ListenUDP("udp", uaddr)
		}
		if err == nil {
			break
		}
		_ = tcpLn.Close()
		if port != "0" || attempt+1 >= bindAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("server: listen udp on port %d: %w", bound.Port, err)
		}
	}
	tcpPort := tcpLn.Addr().(*net.TCPAddr).Port

	tr := &quic.Transport{Conn: udp}
	qln, err := tr.Listen(http3.ConfigureTLSConfig(s.cfg.TLS), s.quicConfig())
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		_ = tcpLn.Close()
		return fmt.Errorf("server: quic listener: %w", err)
	}

	handler := RefuseEarlyData(s.cfg.Handler)
	altSvc := fmt.Sprintf(`h3=":%d"; ma=%d`, tcpPort, AltSvcMaxAge)
	errLog, _ := zap.NewStdLogAt(s.log.Named("http"), zap.WarnLevel)
	tcpTLS := s.cfg.TLS.Clone()
	tcpTLS.NextProtos = []string{"h2", "http/1.1"}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	s.tcp = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Alt-Svc", altSvc)
			handler.ServeHTTP(w, r)
		}),
		TLSConfig:         tcpTLS,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		Protocols:         &protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: DefaultMaxConcurrentStreams},
		ErrorLog:          errLog,
	}
	s.h3 = &http3.Server{
		Handler:        handler,
		TLSConfig:      s.cfg.TLS,
		QUICConfig:     s.quicConfig(),
		MaxHeaderBytes: s.cfg.MaxHeaderBytes,
		IdleTimeout:    s.cfg.IdleTimeout,
	}
	s.tcpLn, s.udpConn, s.quicTr, s.quicLn = tcpLn, udp, tr, qln
	s.addr = tcpLn.Addr().String()
	s.done = make(chan struct{})
	s.started = true

	var wg sync.WaitGroup
	wg.Go(func() { s.serveErr("tcp", s.tcp.ServeTLS(tcpLn, "", "")) })
	wg.Go(func() { s.serveErr("h3", s.h3.ServeListener(qln)) })
	go func() { wg.Wait(); close(s.done) }()
	s.log.Info("listening", zap.String("addr", s.addr), zap.Strings("transports", []string{"tcp", "h3"}))
	return nil
}

func (s *Server) serveErr(transport string, err error) {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		return
	}
	s.log.Error("serving stopped", zap.String("transport", transport), zap.Error(err))
	s.errMu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("server: %s: %w", transport, err)
	}
	s.errMu.Unlock()
}

// Addr returns the bound address (host:port, the same port for TCP and UDP)
// once Start has returned, and "" before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Wait blocks until both transports have stopped serving (after Shutdown,
// or when a listener fails) and returns the first failure, or nil after a
// clean Shutdown. It returns nil at once if the server was never started.
func (s *Server) Wait() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	<-done
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Shutdown stops accepting connections on both transports and waits for
// running requests to finish (HTTP/3 clients get a GOAWAY), until ctx ends;
// then it closes what is left and releases the sockets.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return nil
	}
	tcp, h3, qln, tr, udp, done := s.tcp, s.h3, s.quicLn, s.quicTr, s.udpConn, s.done
	s.mu.Unlock()

	var wg sync.WaitGroup
	var tcpErr, h3Err error
	wg.Go(func() { tcpErr = tcp.Shutdown(ctx) })
	wg.Go(func() { h3Err = h3.Shutdown(ctx) })
	wg.Wait()
	if tcpErr != nil {
		_ = tcp.Close()
	}
	if h3Err != nil {
		_ = h3.Close()
	}
	_ = qln.Close()
	_ = tr.Close()
	_ = udp.Close()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return errors.Join(tcpErr, h3Err)
}

// Transport names the transport a request came over: "h3" or "tcp".
func Transport(r *http.Request) string {
	if r.ProtoMajor == 3 {
		return "h3"
	}
	return "tcp"
}

// RefuseEarlyData answers 425 Too Early (RFC 8470) to a request whose TLS
// handshake has not completed, that is one sent as 0-RTT early data. The
// server never accepts 0-RTT, so this is defence in depth should that
// configuration ever change.
func RefuseEarlyData(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && !r.TLS.HandshakeComplete {
			WriteProblem(w, r, errTooEarly)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Chain wraps mux in the layers every route shares, outermost first:
// WithRequestID, AccessLog (log may be nil), Metrics.Middleware (if m is
// not nil), Identify, RecordRoute. (Server adds RefuseEarlyData around
// whatever handler it serves.) Register /healthz, /readyz and /metrics on
// mux like any other route; Identify lets any verified certificate reach
// them.
func Chain(mux http.Handler, reg *registry.Registry, m *Metrics, log *zap.Logger) http.Handler {
	h := RecordRoute(mux)
	h = Identify(reg, h)
	h = routeFallback(mux, h)
	if m != nil {
		h = m.Middleware(h)
	}
	h = AccessLog(log, h)
	return WithRequestID(h)
}
