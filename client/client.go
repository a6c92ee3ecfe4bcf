// Package client is the Go client of the gateway, used by gwctl and the
// tests: mutual TLS (TLS 1.3, the caller's organisation certificate) over
// HTTPS (HTTP/2 or HTTP/1.1 on TCP) or HTTP/3 (QUIC on UDP).
//
// Get, Post and PostJSON return the gateway's response whatever its status;
// CheckResponse turns a non-2xx response into a *Problem (RFC 9457 problem
// details). IsUnavailable tells the failures worth retrying later: the
// gateway unreachable, a timeout, or a 5xx answer.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/rehabgw/rehabgw/certs"
)

// Transports.
const (
	TransportTCP = "tcp" // HTTPS: HTTP/2 (HTTP/1.1 if the server insists) over TCP
	TransportH3  = "h3"  // HTTP/3 over QUIC (UDP)
)

// ConnectTimeout bounds establishing a connection: the TCP dial and the TLS
// handshake, or the QUIC handshake.
const ConnectTimeout = 10 * time.Second

// userAgent names the client in the gateway's logs.
const userAgent = "rehabgw-client/1"

// Config configures a Client.
type Config struct {
	Gateway  string // base URL, e.g. https://127.0.0.1:8443 (https only; a path prefix is kept)
	CertFile string // the caller's certificate chain, PEM, leaf first
	KeyFile  string // its private key, PEM
	CAFile   string // trust anchor(s) for the gateway's server certificate, PEM
	// Transport is "tcp" (default) or "h3".
	Transport string
	// Timeout bounds a whole exchange, reading the response body included.
	// Zero means no overall limit (large transfers and long polls);
	// connecting is always bounded by ConnectTimeout.
	Timeout time.Duration
}

// Client talks to one gateway. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	transport string
	http      *http.Client
	closer    io.Closer // the HTTP/3 transport, which owns a UDP socket
}

// New loads the key pair and the trust anchors and builds the transport.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.Gateway)
	if err != nil {
		return nil, fmt.Errorf("client: gateway URL %q: %w", cfg.Gateway, err)
	}
	if base.Scheme != "https" || base.Host == "" || base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("client: gateway URL %q must be https://host[:port][/prefix]", cfg.Gateway)
	}
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""
	if cfg.CertFile == "" || cfg.KeyFile == "" || cfg.CAFile == "" {
		return nil, errors.New("client: CertFile, KeyFile and CAFile are required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("client: Timeout must not be negative")
	}
	key, chain, err := certs.LoadKeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	roots, _, err := certs.LoadPool(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      roots,
		Certificates: []tls.Certificate{{Certificate: der, PrivateKey: key, Leaf: chain[0]}},
	}

	c := &Client{base: base}
	var rt http.RoundTripper
	switch cfg.Transport {
	case "", TransportTCP:
		c.transport = TransportTCP
		dialer := &net.Dialer{Timeout: ConnectTimeout, KeepAlive: 15 * time.Second}
		tr := &http.Transport{
			Proxy:               nil, // the gateway is reached directly; mTLS through a proxy is not supported
			DialContext:         dialer.DialContext,
			TLSClientConfig:     tlsCfg,
			TLSHandshakeTimeout: ConnectTimeout,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			HTTP2:               &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
		}
		rt = tr
		c.closer = closerFunc(func() error { tr.CloseIdleConnections(); return nil })
	case TransportH3:
		c.transport = TransportH3
		tr := &http3.Transport{
			TLSClientConfig: tlsCfg,
			QUICConfig: &quic.Config{
				HandshakeIdleTimeout: ConnectTimeout,
				MaxIdleTimeout:       30 * time.Second,
				KeepAlivePeriod:      10 * time.Second, // long polls keep the connection alive
			},
		}
		rt = tr
		c.closer = tr
	default:
		return nil, fmt.Errorf("client: transport %q: want %q or %q", cfg.Transport, TransportH3, TransportTCP)
	}
	c.http = &http.Client{
		Transport: rt,
		Timeout:   cfg.Timeout,
		// The API never redirects; following one could carry a request
		// somewhere else with the client's certificate.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Transport returns "tcp" or "h3".
func (c *Client) Transport() string { return c.transport }

// Close releases idle connections (and the UDP socket of HTTP/3).
func (c *Client) Close() error { return c.closer.Close() }

// URL returns the absolute URL of path (with an optional query) on the
// gateway, under the base URL's path prefix.
func (c *Client) URL(path string) (*url.URL, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("client: path %q: %w", path, err)
	}
	if ref.Scheme != "" || ref.Host != "" || ref.User != nil {
		return nil, fmt.Errorf("client: path %q must be relative to the gateway", path)
	}
	u := *c.base
	u.Path = c.base.Path + "/" + strings.TrimLeft(ref.Path, "/")
	if ref.RawPath != "" {
		u.RawPath = c.base.EscapedPath() + "/" + strings.TrimLeft(ref.RawPath, "/")
	} else {
		u.RawPath = ""
	}
	u.RawQuery = ref.RawQuery
	u.Fragment = ""
	return &u, nil
}

// Do sends req over the client's transport with its certificate and returns
// the response whatever its status. A request with a relative URL (no host)
// is resolved against the gateway's base URL.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if req.URL != nil && req.URL.Host == "" {
		u, err := c.URL(req.URL.RequestURI())
		if err != nil {
			return nil, err
		}
		r2 := req.Clone(req.Context())
		r2.URL = u
		r2.Host = ""
		req = r2
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	return c.http.Do(req)
}

// Get sends GET path. The caller closes the body; see CheckResponse.
func (c *Client) Get(ctx context.Context, path string) (*http.Response, error) {
	return c.send(ctx, http.MethodGet, path, "", nil)
}

// Post sends POST path with the body (streamed; a nil body sends none).
// The caller closes the response body; see CheckResponse.
func (c *Client) Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error) {
	return c.send(ctx, http.MethodPost, path, contentType, body)
}

// PostJSON sends POST path with v encoded as JSON.
func (c *Client) PostJSON(ctx context.Context, path string, v any) (*http.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode request: %w", err)
	}
	return c.send(ctx, http.MethodPost, path, "application/json", bytes.NewReader(b))
}

func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	u, err := c.URL(path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "*/*")
	return c.Do(req)
}
