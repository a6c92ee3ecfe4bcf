// Package config is gatewayd's one configuration lifecycle: strict decode
// (an unknown key is an error naming the key and its line), defaults,
// Validate (errors name the key), and only then are resources opened.
//
// Without a file, Embedded gives the zero-configuration defaults used by
// `make run`: everything under one data directory, a development PKI,
// SQLite and an embedded S3 server on loopback.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is gatewayd's configuration. See docs/operations.md for every key.
type Config struct {
	// Listen is host:port for both HTTPS over TCP and HTTP/3 over UDP.
	Listen string `yaml:"listen"`
	// Data is the data directory (SQLite file, embedded blobs, dev PKI).
	Data string `yaml:"data"`
	// Production marks a production configuration: the development PKI is
	// refused.
	Production bool `yaml:"production"`
	// OperatorCVR is the CVR number of the organisation running the gateway.
	OperatorCVR string `yaml:"operator_cvr"`

	TLS     TLS     `yaml:"tls"`
	Signing Signing `yaml:"signing"`
	Trust   Trust   `yaml:"trust"`
	Store   Store   `yaml:"store"`
	Blob    Blob    `yaml:"blob"`
	Limits  Limits  `yaml:"limits"`
	Log     Log     `yaml:"log"`
}

// TLS is the server certificate and the client trust anchors (mutual TLS).
type TLS struct {
	Cert     string   `yaml:"cert"`
	Key      string   `yaml:"key"`
	ClientCA []string `yaml:"client_ca"`
}

// Signing is the gateway's countersigning certificate and key.
type Signing struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Trust lists the CA certificates that senders' manifest signatures must
// chain to.
type Trust struct {
	Senders []string `yaml:"senders"`
}

// Store selects the database.
type Store struct {
	Driver string `yaml:"driver"` // sqlite | postgres
	Path   string `yaml:"path"`   // sqlite file
	DSN    string `yaml:"dsn"`    // postgres URL; keep the password out of it (use a .pgpass file or PGPASSWORD)
}

// Blob selects the S3 storage: embedded (default) or an external endpoint.
type Blob struct {
	Embedded *Embedded `yaml:"embedded"`
	S3       *S3       `yaml:"s3"`
}

// Embedded is the embedded S3 server on loopback.
type Embedded struct {
	Dir  string `yaml:"dir"`
	Addr string `yaml:"addr"` // loopback host:port; port 0 picks a free one
}

// S3 is an external S3-compatible endpoint.
type S3 struct {
	Endpoint     string `yaml:"endpoint"` // host:port
	Secure       bool   `yaml:"secure"`
	CAFile       string `yaml:"ca_file"`
	AccessKey    string `yaml:"access_key"`
	SecretKeyEnv string `yaml:"secret_key_env"` // name of the environment variable holding the secret key
	Bucket       string `yaml:"bucket"`
	Region       string `yaml:"region"`
	SSE          bool   `yaml:"sse"`
	CreateBucket bool   `yaml:"create_bucket"`
}

// Limits bound requests.
type Limits struct {
	MaxPartBytes   int64 `yaml:"max_part_bytes"`
	MaxBundleBytes int64 `yaml:"max_bundle_bytes"`
}

// Log configures logging.
type Log struct {
	Level string `yaml:"level"` // debug | info | warn | error
}

// EmbeddedDefaults returns the zero-configuration defaults under data, listening on
// listen.
func EmbeddedDefaults(data, listen string) *Config {
	pki := filepath.Join(data, "pki")
	return &Config{
		Listen:  listen,
		Data:    data,
		TLS:     TLS{Cert: filepath.Join(pki, "gateway.crt"), Key: filepath.Join(pki, "gateway.key"), ClientCA: []string{filepath.Join(pki, "ca.crt")}},
		Signing: Signing{Cert: filepath.Join(pki, "gateway.crt"), Key: filepath.Join(pki, "gateway.key")},
		Trust:   Trust{Senders: []string{filepath.Join(pki, "ca.crt")}},
		Store:   Store{Driver: "sqlite", Path: filepath.Join(data, "gateway.db")},
		Blob:    Blob{Embedded: &Embedded{Dir: filepath.Join(data, "blobs"), Addr: "127.0.0.1:0"}},
		Log:     Log{Level: "info"},
	}
}

// DevPKIDir is where embedded mode keeps its generated development PKI.
func (c *Config) DevPKIDir() string { return filepath.Join(c.Data, "pki") }

// Load reads and strictly decodes a YAML file, applies defaults and
// validates.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Decode strictly decodes YAML: an unknown key is an error that names it
// and its line.
func Decode(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the configuration is empty")
		}
		return nil, fmt.Errorf("configuration: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if c.Data == "" {
		c.Data = "var"
	}
	if c.Store.Driver == "" {
		c.Store.Driver = "sqlite"
	}
	if c.Store.Driver == "sqlite" && c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.Data, "gateway.db")
	}
	if c.Blob.Embedded == nil && c.Blob.S3 == nil {
		c.Blob.Embedded = &Embedded{}
	}
	if e := c.Blob.Embedded; e != nil {
		if e.Dir == "" {
			e.Dir = filepath.Join(c.Data, "blobs")
		}
		if e.Addr == "" {
			e.Addr = "127.0.0.1:0"
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

// Validate checks the configuration; every error names its key.
func (c *Config) Validate() error {
	var problems []string
	bad := func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "not host:port (%v)", err)
	}
	need := func(key, v string) {
		if v == "" {
			bad(key, "required")
		}
	}
	need("tls.cert", c.TLS.Cert)
	need("tls.key", c.TLS.Key)
	if len(c.TLS.ClientCA) == 0 {
		bad("tls.client_ca", "at least one CA file is required (clients authenticate with certificates)")
	}
	need("signing.cert", c.Signing.Cert)
	need("signing.key", c.Signing.Key)
	if len(c.Trust.Senders) == 0 {
		bad("trust.senders", "at least one CA file is required (manifest signatures chain to it)")
	}
	switch c.Store.Driver {
	case "sqlite":
		need("store.path", c.Store.Path)
	case "postgres":
		need("store.dsn", c.Store.DSN)
	default:
		bad("store.driver", "must be sqlite or postgres, not %q", c.Store.Driver)
	}
	switch {
	case c.Blob.Embedded != nil && c.Blob.S3 != nil:
		bad("blob", "set either embedded or s3, not both")
	case c.Blob.S3 != nil:
		s := c.Blob.S3
		need("blob.s3.endpoint", s.Endpoint)
		need("blob.s3.bucket", s.Bucket)
		need("blob.s3.access_key", s.AccessKey)
		if s.SecretKeyEnv == "" {
			bad("blob.s3.secret_key_env", "name the environment variable that holds the secret key (secrets never live in this file)")
		}
	case c.Blob.Embedded != nil:
		host, _, err := net.SplitHostPort(c.Blob.Embedded.Addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			bad("blob.embedded.addr", "must be a loopback address such as 127.0.0.1:0")
		}
		if c.Production {
			bad("blob.embedded", "the embedded S3 server is for development; production uses blob.s3")
		}
	}
	if c.Limits.MaxPartBytes < 0 || c.Limits.MaxBundleBytes < 0 {
		bad("limits", "sizes cannot be negative")
	}
	if c.Limits.MaxPartBytes > 0 && c.Limits.MaxBundleBytes > 0 && c.Limits.MaxPartBytes > c.Limits.MaxBundleBytes {
		bad("limits.max_part_bytes", "larger than limits.max_bundle_bytes")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error")
	}
	if c.Production && c.Store.Driver == "sqlite" {
		bad("store.driver", "production runs on postgres (several gatewayd processes share it)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// S3Secret reads the S3 secret key from the environment variable the
// configuration names.
func (s *S3) S3Secret() (string, error) {
	v := os.Getenv(s.SecretKeyEnv)
	if v == "" {
		return "", fmt.Errorf("blob.s3.secret_key_env: environment variable %s is empty", s.SecretKeyEnv)
	}
	return v, nil
}

// JanitorGrace is how old an unreferenced part object must be before the
// janitor deletes it: longer than any push can take.
const JanitorGrace = 6 * time.Hour
