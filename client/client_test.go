package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/client"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/server"
)

var transports = []string{client.TransportTCP, client.TransportH3}

type gateway struct {
	pki  string
	srv  *server.Server
	base string
}

func pki(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := certs.GenerateDev(dir, certs.DevOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startGateway serves a small test API through the server package's chain.
func startGateway(t *testing.T, dir string) *gateway {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/echo", func(w http.ResponseWriter, r *http.Request) {
		c, _ := server.CallerFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{
			"org": c.Org.ID, "transport": server.Transport(r), "proto": r.Proto, "query": r.URL.RawQuery, "path": r.URL.Path,
		})
	})
	mux.HandleFunc("POST /v1/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("X-Proto", r.Proto)
		_, _ = io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /v1/problem/{kind}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("kind") {
		case "invalid":
			server.WriteProblem(w, r, errs.List{
				errs.E(errs.Invalid, "xsd.invalid", "element X is not expected").InPart("doc-1.xml").At(7, "/A/X"),
				errs.E(errs.Invalid, "xsd.invalid", "missing element Y").InPart("doc-1.xml"),
			})
		case "unavailable":
			server.WriteProblem(w, r, errs.E(errs.Unavailable, "store.unavailable", "the store is down"))
		case "internal":
			server.WriteProblem(w, r, errors.New("secret"))
		}
	})
	mux.HandleFunc("GET /v1/plain", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "I'm a teapot\x00\nand more", http.StatusTeapot)
	})
	mux.HandleFunc("GET /v1/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	tlsCfg, err := server.NewTLSConfig(server.TLSFiles{
		CertFile: filepath.Join(dir, "gateway.crt"), KeyFile: filepath.Join(dir, "gateway.key"),
		ClientCAFiles: []string{filepath.Join(dir, certs.DevCACert)},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", TLS: tlsCfg, Handler: server.Chain(mux, registry.Default(), nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &gateway{pki: dir, srv: srv, base: "https://" + srv.Addr()}
}

func newClient(t *testing.T, g *gateway, transport, leafDir, leaf string, timeout time.Duration) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Gateway: g.base, Transport: transport, Timeout: timeout,
		CertFile: filepath.Join(leafDir, leaf+".crt"), KeyFile: filepath.Join(leafDir, leaf+".key"),
		CAFile: filepath.Join(g.pki, certs.DevCACert),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClient(t *testing.T) {
	g := startGateway(t, pki(t))
	ctx := context.Background()
	for _, transport := range transports {
		c := newClient(t, g, transport, g.pki, "kommune-101", 10*time.Second)
		wantProto := map[string]string{"tcp": "HTTP/2.0", "h3": "HTTP/3.0"}[transport]

		t.Run("ok/get/"+transport, func(t *testing.T) {
			resp, err := c.Get(ctx, "/v1/echo?after=3&wait=0")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := client.CheckResponse(resp); err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"org": "kommune-101", "transport": transport, "proto": wantProto, "query": "after=3&wait=0", "path": "/v1/echo"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})

		t.Run("ok/post-streamed/"+transport, func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() {
				for i := range 64 {
					_, _ = fmt.Fprintf(pw, "%04d%s\n", i, strings.Repeat("x", 8<<10))
				}
				_ = pw.Close()
			}()
			resp, err := c.Post(ctx, "/v1/echo", "multipart/related; boundary=b", pr)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := client.CheckResponse(resp); err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if len(body) != 64*(4+8<<10+1) || resp.Header.Get("Content-Type") != "multipart/related; boundary=b" || resp.Header.Get("X-Proto") != wantProto {
				t.Errorf("%d bytes, %q, %q", len(body), resp.Header.Get("Content-Type"), resp.Header.Get("X-Proto"))
			}
		})

		t.Run("ok/post-json/"+transport, func(t *testing.T) {
			resp, err := c.PostJSON(ctx, "v1/echo", map[string]string{"cpr": "x"})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if string(body) != `{"cpr":"x"}` || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %q", body, resp.Header.Get("Content-Type"))
			}
		})

		t.Run("ok/do-relative/"+transport, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, "GET", "/v1/echo?x=1", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != map[string]int{"tcp": 2, "h3": 3}[transport] {
				t.Errorf("status %d proto %s", resp.StatusCode, resp.Proto)
			}
		})

		t.Run("fail/problem/"+transport, func(t *testing.T) {
			resp, err := c.Get(ctx, "/v1/problem/invalid")
			if err != nil {
				t.Fatal(err)
			}
			err = client.CheckResponse(resp)
			var p *client.Problem
			if !errors.As(err, &p) {
				t.Fatalf("%T %v", err, err)
			}
			want := client.Problem{
				Type: "https://rehabgw.dk/problems/xsd.invalid", Title: "Invalid request", Status: 400, Code: "xsd.invalid",
				Detail: "2 problems; the first: doc-1.xml:7: /A/X: element X is not expected",
				Errors: []client.ProblemItem{
					{Code: "xsd.invalid", Part: "doc-1.xml", Line: 7, Path: "/A/X", Message: "element X is not expected"},
					{Code: "xsd.invalid", Part: "doc-1.xml", Message: "missing element Y"},
				},
				ErrorsTotal: 2, RequestID: resp.Header.Get("X-Request-ID"),
			}
			if fmt.Sprintf("%+v", *p) != fmt.Sprintf("%+v", want) || p.RequestID == "" {
				t.Errorf("got  %+v\nwant %+v", *p, want)
			}
			if client.IsUnavailable(err) {
				t.Error("a 400 is unavailable")
			}
			if !strings.HasPrefix(err.Error(), "gateway: HTTP 400 xsd.invalid: 2 problems") {
				t.Errorf("Error() = %q", err.Error())
			}
		})

		t.Run("fail/unavailable-problem/"+transport, func(t *testing.T) {
			for _, kind := range []string{"unavailable", "internal"} {
				resp, err := c.Get(ctx, "/v1/problem/"+kind)
				if err != nil {
					t.Fatal(err)
				}
				err = client.CheckResponse(resp)
				if !client.IsUnavailable(err) {
					t.Errorf("%s: %v not unavailable", kind, err)
				}
			}
		})

		t.Run("fail/plain/"+transport, func(t *testing.T) {
			resp, err := c.Get(ctx, "/v1/plain")
			if err != nil {
				t.Fatal(err)
			}
			err = client.CheckResponse(resp)
			var p *client.Problem
			if !errors.As(err, &p) || p.Status != 418 || p.Title != "I'm a teapot" || p.Detail != "I'm a teapot and more" || p.Code != "" {
				t.Errorf("%+v", p)
			}
		})

		t.Run("fail/unknown-route/"+transport, func(t *testing.T) {
			resp, err := c.Get(ctx, "/v2/nothing")
			if err != nil {
				t.Fatal(err)
			}
			var p *client.Problem
			if err := client.CheckResponse(resp); !errors.As(err, &p) || p.Status != 404 {
				t.Errorf("%v", err)
			}
		})

		t.Run("fail/timeout/"+transport, func(t *testing.T) {
			short := newClient(t, g, transport, g.pki, "kommune-101", 300*time.Millisecond)
			resp, err := short.Get(ctx, "/v1/slow")
			if err == nil {
				resp.Body.Close()
				t.Fatal("no timeout")
			}
			if !client.IsUnavailable(err) {
				t.Errorf("timeout %v is not unavailable", err)
			}
		})

		t.Run("fail/cancelled/"+transport, func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := c.Get(cctx, "/v1/echo")
			if err == nil || client.IsUnavailable(err) {
				t.Errorf("cancelled: %v", err)
			}
		})
	}
}

func TestTLSRefusalIsNotUnavailable(t *testing.T) {
	g := startGateway(t, pki(t))
	other := pki(t)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			c := newClient(t, g, transport, other, "kommune-101", 10*time.Second)
			resp, err := c.Get(context.Background(), "/v1/echo")
			if err == nil {
				resp.Body.Close()
				t.Fatal("a certificate of another CA was accepted")
			}
			// Over TLS 1.3 on TCP the server refuses the certificate after
			// the client's handshake has finished; if its reset overtakes
			// its alert, the client sees only a broken connection.
			reset := transport == client.TransportTCP && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
			if client.IsUnavailable(err) && !reset {
				t.Errorf("%v is reported as unavailable", err)
			}
		})
	}
	t.Run("untrusted-server", func(t *testing.T) {
		// The client trusts another CA than the one of the gateway's certificate.
		for _, transport := range transports {
			c, err := client.New(client.Config{
				Gateway: g.base, Transport: transport,
				CertFile: filepath.Join(g.pki, "kommune-101.crt"), KeyFile: filepath.Join(g.pki, "kommune-101.key"),
				CAFile: filepath.Join(other, certs.DevCACert),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			resp, err := c.Get(context.Background(), "/v1/echo")
			if err == nil {
				resp.Body.Close()
				t.Fatal("an untrusted server was accepted")
			}
			if client.IsUnavailable(err) {
				t.Errorf("%s: %v is reported as unavailable", transport, err)
			}
		}
	})
}

func TestUnreachableIsUnavailable(t *testing.T) {
	dir := pki(t)
	// A port that nobody listens on: bind, note, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g := &gateway{pki: dir, base: "https://" + addr}
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			c := newClient(t, g, transport, dir, "kommune-101", 0)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			resp, err := c.Get(ctx, "/v1/echo")
			if err == nil {
				resp.Body.Close()
				t.Fatal("no error")
			}
			if !client.IsUnavailable(err) {
				t.Errorf("%v (%T) is not unavailable", err, err)
			}
		})
	}
	t.Run("after-shutdown", func(t *testing.T) {
		g := startGateway(t, dir)
		for _, transport := range transports {
			c := newClient(t, g, transport, dir, "kommune-101", 0)
			resp, err := c.Get(context.Background(), "/v1/echo")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		for _, transport := range transports {
			c := newClient(t, g, transport, dir, "kommune-101", 0)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			resp, err := c.Get(ctx, "/v1/echo")
			cancel()
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: answered after shutdown", transport)
			}
			if !client.IsUnavailable(err) {
				t.Errorf("%s: %v is not unavailable", transport, err)
			}
		}
	})
}

func TestNewValidates(t *testing.T) {
	dir := pki(t)
	good := client.Config{
		Gateway:  "https://127.0.0.1:8443",
		CertFile: filepath.Join(dir, "kommune-101.crt"), KeyFile: filepath.Join(dir, "kommune-101.key"),
		CAFile: filepath.Join(dir, certs.DevCACert),
	}
	for name, mod := range map[string]func(*client.Config){
		"fail/http":          func(c *client.Config) { c.Gateway = "http://127.0.0.1:8443" },
		"fail/no-host":       func(c *client.Config) { c.Gateway = "https:///x" },
		"fail/query":         func(c *client.Config) { c.Gateway = "https://gw/?a=b" },
		"fail/userinfo":      func(c *client.Config) { c.Gateway = "https://u:p@gw/" },
		"fail/transport":     func(c *client.Config) { c.Transport = "udp" },
		"fail/no-ca":         func(c *client.Config) { c.CAFile = "" },
		"fail/key-mismatch":  func(c *client.Config) { c.KeyFile = filepath.Join(dir, "region-1084.key") },
		"fail/ca-is-key":     func(c *client.Config) { c.CAFile = filepath.Join(dir, "kommune-101.key") },
		"fail/negative-time": func(c *client.Config) { c.Timeout = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			mod(&cfg)
			if c, err := client.New(cfg); err == nil {
				c.Close()
				t.Error("accepted")
			}
		})
	}
	for _, tr := range []string{"", "tcp", "h3"} {
		cfg := good
		cfg.Transport = tr
		c, err := client.New(cfg)
		if err != nil {
			t.Fatalf("%q: %v", tr, err)
		}
		want := tr
		if want == "" {
			want = "tcp"
		}
		if c.Transport() != want {
			t.Errorf("Transport() = %q", c.Transport())
		}
		c.Close()
	}
}

func TestURL(t *testing.T) {
	dir := pki(t)
	for _, tc := range []struct{ base, path, want string }{
		{"https://gw:8443", "/v1/inbox?after=3", "https://gw:8443/v1/inbox?after=3"},
		{"https://gw:8443/", "v1/inbox", "https://gw:8443/v1/inbox"},
		{"https://gw/prefix/", "/v1/bundles/a%2Fb/parts/p", "https://gw/prefix/v1/bundles/a%2Fb/parts/p"},
		{"https://gw/prefix", "/v1/x#frag", "https://gw/prefix/v1/x"},
	} {
		c, err := client.New(client.Config{Gateway: tc.base,
			CertFile: filepath.Join(dir, "kommune-101.crt"), KeyFile: filepath.Join(dir, "kommune-101.key"),
			CAFile: filepath.Join(dir, certs.DevCACert)})
		if err != nil {
			t.Fatal(err)
		}
		u, err := c.URL(tc.path)
		if err != nil || u.String() != tc.want {
			t.Errorf("%s + %s = %v, %v; want %s", tc.base, tc.path, u, err, tc.want)
		}
		if _, err := c.URL("https://elsewhere/v1/x"); err == nil {
			t.Error("absolute URL accepted")
		}
		if _, err := c.URL("//elsewhere/v1/x"); err == nil {
			t.Error("network-path reference accepted")
		}
		c.Close()
	}
}

func TestCheckResponseNon2xxOnly(t *testing.T) {
	for _, code := range []int{200, 201, 204, 299} {
		resp := &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("x")), Header: http.Header{}}
		if err := client.CheckResponse(resp); err != nil {
			t.Errorf("%d: %v", code, err)
		}
	}
	for _, code := range []int{301, 304, 400, 503} {
		resp := &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}}
		var p *client.Problem
		if err := client.CheckResponse(resp); !errors.As(err, &p) || p.Status != code {
			t.Errorf("%d: %v", code, err)
		}
	}
	// A problem body with a broken JSON falls back to the status.
	resp := &http.Response{StatusCode: 409, Body: io.NopCloser(strings.NewReader("{broken")),
		Header: http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"abc"}}}
	var p *client.Problem
	if err := client.CheckResponse(resp); !errors.As(err, &p) || p.Status != 409 || p.Title != "Conflict" || p.RequestID != "abc" {
		t.Errorf("%+v", p)
	}
}
