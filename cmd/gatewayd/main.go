// Command gatewayd is the rehabilitation-case gateway service.
//
//	gatewayd --config FILE          production: everything from the YAML file (docs/operations.md)
//	gatewayd [--data DIR] [--listen HOST:PORT]
//	                                embedded defaults: data under DIR (default var/), a development
//	                                PKI generated in DIR/pki when missing, SQLite, an embedded S3
//	                                server on loopback; HTTPS and HTTP/3 on HOST:PORT (default
//	                                127.0.0.1:8443, the same port for TCP and UDP)
//
// It stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "time/tzdata" // dates are read in Europe/Copenhagen on any machine

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rehabgw/rehabgw/gateway/config"
	"github.com/rehabgw/rehabgw/gateway/service"
)

func main() {
	cfgPath := flag.String("config", "", "configuration file (YAML); without it, embedded defaults")
	data := flag.String("data", "var", "data directory of the embedded defaults")
	listen := flag.String("listen", "127.0.0.1:8443", "HOST:PORT for HTTPS (TCP) and HTTP/3 (UDP)")
	flag.Parse()

	var cfg *config.Config
	var err error
	if *cfgPath != "" {
		cfg, err = config.Load(*cfgPath)
	} else {
		cfg = config.EmbeddedDefaults(*data, *listen)
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayd:", err)
		os.Exit(2)
	}
	log, err := newLogger(cfg.Log.Level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayd:", err)
		os.Exit(2)
	}
	defer func() { _ = log.Sync() }()
	if *cfgPath == "" {
		generated, err := service.PrepareEmbedded(cfg, time.Now())
		if err != nil {
			log.Fatal("preparing the data directory failed", zap.Error(err))
		}
		if generated {
			log.Info("generated a development PKI (never for production)", zap.String("dir", cfg.DevPKIDir()))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = service.Run(ctx, cfg, log.Named("gatewayd"), func(g *service.Gateway) {
		log.Info("gateway listening", zap.String("addr", g.Addr()), zap.String("transports", "https (tcp), http/3 (udp)"))
		if *cfgPath == "" {
			pki := cfg.DevPKIDir()
			fmt.Fprintf(os.Stderr, "\nPush an example bundle:\n\n  bin/gwctl example --purpose forberedelse --out /tmp/b1 --cert %[1]s/kommune-101.crt --key %[1]s/kommune-101.key && \\\n  bin/gwctl push --gateway https://%[2]s --cert %[1]s/kommune-101.crt --key %[1]s/kommune-101.key --ca %[1]s/ca.crt /tmp/b1\n\n", pki, g.Addr())
		}
	})
	if err != nil {
		log.Error("gatewayd stopped with an error", zap.Error(err))
		os.Exit(1)
	}
	log.Info("gatewayd stopped")
}

func newLogger(level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	return cfg.Build()
}
