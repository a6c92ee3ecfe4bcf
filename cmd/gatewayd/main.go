// Command gatewayd is the rehabilitation-case gateway service.
//
// Without --config it runs on embedded defaults: data under --data (default
// var/), a development PKI generated in DATA/pki when missing. This build
// prepares the data directory, the PKI and the validation pipeline and
// checks that the schemas compile; the network service (HTTP/3 and HTTPS
// with mutual TLS) is added by the gateway-service work.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "time/tzdata" // dates are read in Europe/Copenhagen on any machine

	"go.uber.org/zap"

	"github.com/rehabgw/rehabgw/certs"
	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/registry"
)

func main() {
	data := flag.String("data", "var", "data directory (embedded-defaults mode)")
	flag.Parse()
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayd:", err)
		os.Exit(2)
	}
	defer func() { _ = log.Sync() }()
	if err := run(*data, log.Named("gatewayd")); err != nil {
		log.Error("start-up failed", zap.Error(err))
		os.Exit(1)
	}
}

func run(data string, log *zap.Logger) error {
	pki := filepath.Join(data, "pki")
	if _, err := os.Stat(filepath.Join(pki, "ca.crt")); os.IsNotExist(err) {
		if err := certs.GenerateDev(pki, certs.DevOptions{Now: time.Now(), Registry: registry.Default()}); err != nil {
			return fmt.Errorf("generate development PKI: %w", err)
		}
		log.Info("generated development PKI", zap.String("dir", pki))
	}
	if _, err := bundle.NewValidator(bundle.Config{}); err != nil {
		return err
	}
	log.Info("schemas compiled and development PKI ready; the network service is not part of this build",
		zap.String("data", data),
		zap.String("try", "bin/gwctl example --purpose forberedelse --out /tmp/b1 && bin/gwctl validate /tmp/b1"))
	return nil
}
