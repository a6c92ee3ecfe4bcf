package config

import (
	"strings"
	"testing"
)

const base = `
listen: 127.0.0.1:9443
data: /tmp/gw
tls: {cert: s.crt, key: s.key, client_ca: [ca.crt]}
signing: {cert: g.crt, key: g.key}
trust: {senders: [ca.crt]}
`

func TestDecode(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string // substring of the error; "" = ok
	}{
		{name: "ok/minimal", yaml: base},
		{name: "ok/postgres-and-s3", yaml: base + `
store: {driver: postgres, dsn: "postgres://gw@db/gw"}
blob: {s3: {endpoint: "minio:9000", bucket: b, access_key: a, secret_key_env: S3_SECRET, sse: true}}`},
		{name: "fail/unknown-top-level-key", yaml: base + "listne: x\n", want: "listne"},
		{name: "fail/unknown-nested-key-names-line", yaml: base + "store:\n  drvier: sqlite\n", want: "line 8"},
		{name: "fail/bad-driver", yaml: base + "store: {driver: mysql}\n", want: "store.driver"},
		{name: "fail/postgres-without-dsn", yaml: base + "store: {driver: postgres}\n", want: "store.dsn"},
		{name: "fail/embedded-on-public-address", yaml: base + "blob: {embedded: {addr: '0.0.0.0:9000'}}\n", want: "blob.embedded.addr"},
		{name: "fail/both-blob-stores", yaml: base + "blob: {embedded: {}, s3: {endpoint: x, bucket: b, access_key: a, secret_key_env: S}}\n", want: "not both"},
		{name: "fail/s3-secret-in-file-not-allowed", yaml: base + "blob: {s3: {endpoint: x, bucket: b, access_key: a, secret_key: s}}\n", want: "secret_key"},
		{name: "fail/production-on-sqlite", yaml: base + "production: true\nblob: {s3: {endpoint: x, bucket: b, access_key: a, secret_key_env: S}}\n", want: "store.driver"},
		{name: "fail/production-embedded-blobs", yaml: base + "production: true\nstore: {driver: postgres, dsn: x}\n", want: "blob.embedded"},
		{name: "fail/missing-tls", yaml: "listen: 127.0.0.1:1\n", want: "tls.cert"},
		{name: "fail/bad-listen", yaml: strings.Replace(base, "127.0.0.1:9443", "nope", 1), want: "listen"},
		{name: "fail/bad-log-level", yaml: base + "log: {level: loud}\n", want: "log.level"},
		{name: "fail/empty", yaml: "", want: "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(strings.NewReader(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Listen == "" || c.Store.Driver == "" {
					t.Fatal("defaults not applied")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestEmbeddedDefaultsValidate(t *testing.T) {
	c := EmbeddedDefaults("var", "127.0.0.1:8443")
	c.defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != "sqlite" || c.Blob.Embedded == nil || c.DevPKIDir() != "var/pki" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}
