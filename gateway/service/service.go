// Package service is gatewayd's composition root: it turns a validated
// configuration into running parts (store, blob storage, the intake
// pipeline, the API, both listeners) in a fixed order, and closes them in
// reverse. cmd/gatewayd only parses flags and calls Run; the tests start
// whole gateways in-process through Open.
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/config"
	"github.com/rehabgw/rehabgw/gateway/intake"
	"github.com/rehabgw/rehabgw/gateway/registry"
	"github.com/rehabgw/rehabgw/gateway/server"
	"github.com/rehabgw/rehabgw/gateway/store"
	"github.com/rehabgw/rehabgw/gateway/xmlsig"
)

// Gateway is a running gateway.
type Gateway struct {
	cfg      *config.Config
	log      *zap.Logger
	Store    store.Store
	Blobs    blob.Store
	embedded *blob.Embedded
	srv      *server.Server
	API      *server.API
	Identity string // the gateway's own certificate identity

	stop    context.CancelFunc
	bg      sync.WaitGroup
	closers []func() error
}

// PrepareEmbedded creates the data directory and, when missing, the
// development PKI of embedded mode.
func PrepareEmbedded(cfg *config.Config, now time.Time) (generated bool, err error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(cfg.DevPKIDir(), "ca.crt")); err == nil {
		return false, nil
	}
	if err := certs.GenerateDev(cfg.DevPKIDir(), certs.DevOptions{Now: now, Registry: registry.Default()}); err != nil {
		return false, fmt.Errorf("generate the development PKI: %w", err)
	}
	return true, nil
}

// Open opens every resource of cfg (nothing listens yet). On error it
// closes what it opened.
func Open(ctx context.Context, cfg *config.Config, log *zap.Logger) (_ *Gateway, err error) {
	g := &Gateway{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			_ = g.closeAll() // g stays valid here whatever Open returns
		}
	}()
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	reg := registry.Default()
	if cfg.OperatorCVR != "" {
		if reg, err = reg.WithOperatorCVR(cfg.OperatorCVR); err != nil {
			return nil, fmt.Errorf("operator_cvr: %w", err)
		}
	}

	// Keys and trust.
	key, chain, err := certs.LoadKeyPair(cfg.Signing.Cert, cfg.Signing.Key)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if cfg.Production && isDevelopment(chain[0].Subject.Organization) {
		return nil, errors.New("signing.cert: a development certificate cannot be used in a configuration marked production")
	}
	signer, err := xmlsig.NewSigner(key, chain)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	gid, err := certs.IdentityOf(chain[0])
	if err != nil {
		return nil, fmt.Errorf("signing.cert: %w", err)
	}
	if op, ok := reg.ByCVR(gid.CVR); !ok || op.Kind != registry.KindOperator {
		return nil, fmt.Errorf("signing.cert: CVR %s is not the operator's (set operator_cvr)", gid.CVR)
	}
	g.Identity = gid.String()
	senders, _, err := certs.LoadPool(cfg.Trust.Senders...)
	if err != nil {
		return nil, fmt.Errorf("trust.senders: %w", err)
	}
	tlsCfg, err := server.NewTLSConfig(server.TLSFiles{CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key, ClientCAFiles: cfg.TLS.ClientCA})
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}

	// Store.
	switch cfg.Store.Driver {
	case "sqlite":
		s, err := store.OpenSQLite(cfg.Store.Path)
		if err != nil {
			return nil, fmt.Errorf("store (sqlite %s): %w", cfg.Store.Path, err)
		}
		g.Store = s
	case "postgres":
		s, err := store.OpenPostgres(ctx, cfg.Store.DSN)
		if err != nil {
			return nil, fmt.Errorf("store (postgres): %w", err)
		}
		g.Store = s
	}
	g.closers = append(g.closers, g.Store.Close)

	// Blob storage, always through minio-go and the S3 protocol.
	var s3cfg blob.S3Config
	if e := cfg.Blob.Embedded; e != nil {
		if g.embedded, err = blob.StartEmbedded(e.Dir, e.Addr); err != nil {
			return nil, fmt.Errorf("blob.embedded: %w", err)
		}
		g.closers = append(g.closers, g.embedded.Close)
		s3cfg = g.embedded.Config()
	} else {
		s := cfg.Blob.S3
		secret, err := s.S3Secret()
		if err != nil {
			return nil, err
		}
		s3cfg = blob.S3Config{Endpoint: s.Endpoint, Secure: s.Secure, CAFile: s.CAFile, AccessKey: s.AccessKey, SecretKey: secret,
			Bucket: s.Bucket, Region: s.Region, SSE: s.SSE, CreateBucket: s.CreateBucket}
	}
	blobs, err := blob.NewS3(ctx, s3cfg)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	g.Blobs = blobs

	// Pipeline and API.
	limits := bundle.Limits{MaxPartBytes: cfg.Limits.MaxPartBytes, MaxBundleBytes: cfg.Limits.MaxBundleBytes}
	v, err := bundle.NewValidator(bundle.Config{Registry: reg, Limits: limits})
	if err != nil {
		return nil, err
	}
	g.API = &server.API{Store: g.Store, Blobs: g.Blobs, Limits: v.Limits(), Log: log.Named("api")}
	g.API.Pipeline = &intake.Pipeline{
		Validator: v, Trust: bundle.Trust{Roots: senders}, Store: g.Store, Blobs: g.Blobs,
		Signer: signer, Gateway: g.Identity, Log: log.Named("intake"), Committed: g.API.Notify,
	}

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := server.NewMetrics(promReg)
	mux := http.NewServeMux()
	g.API.Register(mux)
	healthz, readyz := server.Health(map[string]func(context.Context) error{
		"database": g.Store.Ping,
		"s3":       g.Blobs.Ping,
	})
	mux.Handle("GET /healthz", healthz)
	mux.Handle("GET /readyz", readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))

	g.srv, err = server.New(server.Config{
		Listen:  cfg.Listen,
		TLS:     tlsCfg,
		Handler: server.Chain(mux, reg, metrics, log.Named("http")),
		Logger:  log.Named("server"),
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func isDevelopment(orgs []string) bool {
	for _, o := range orgs {
		if o == "DEVELOPMENT ONLY" {
			return true
		}
	}
	return false
}

// Start binds both listeners and starts the background janitor.
func (g *Gateway) Start() error {
	if err := g.srv.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		g.API.WatchCommits(ctx)
	}()
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n, err := intake.Janitor(ctx, g.Store, g.Blobs, config.JanitorGrace, time.Now())
				if err != nil {
					g.log.Warn("janitor pass failed", zap.Error(err))
				} else if n > 0 {
					g.log.Info("janitor deleted objects of interrupted pushes", zap.Int("objects", n))
				}
			}
		}
	}()
	return nil
}

// Addr is the bound address (TCP and UDP share the port).
func (g *Gateway) Addr() string { return g.srv.Addr() }

// Close stops the listeners gracefully (bounded by ctx) and closes every
// resource in reverse order.
func (g *Gateway) Close(ctx context.Context) error {
	var err error
	if g.srv != nil {
		err = g.srv.Shutdown(ctx)
	}
	if g.stop != nil {
		g.stop()
	}
	g.bg.Wait()
	return errors.Join(err, g.closeAll())
}

func (g *Gateway) closeAll() error {
	var err error
	for i := len(g.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, g.closers[i]())
	}
	g.closers = nil
	return err
}

// Run opens and starts a gateway and serves until ctx is done.
func Run(ctx context.Context, cfg *config.Config, log *zap.Logger, started func(g *Gateway)) error {
	g, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := g.Start(); err != nil {
		_ = g.Close(context.Background())
		return err
	}
	if started != nil {
		started(g)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return g.Close(sctx)
}
