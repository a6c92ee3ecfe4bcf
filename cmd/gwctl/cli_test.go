package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rehabgw/rehabgw/internal/testenv"
)

func repo() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}

func pki(name string) string { return filepath.Join(repo(), "testdata", "pki", name) }

// gwctl runs the CLI in-process and returns exit code, stdout and stderr.
func gwctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestOfflineContract(t *testing.T) {
	purposes := map[string]string{
		"forberedelse": "kommune-101", "indstilling": "kommune-101", "henvisning": "kommune-101",
		"sundhedskoordinator-udtalelse": "region-1084", "klinisk-funktion-attest": "region-1084",
	}
	for p, who := range purposes {
		t.Run("ok/"+p, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if code, _, e := gwctl(t, "example", "--purpose", p, "--out", dir); code != 0 {
				t.Fatalf("example: %d %s", code, e)
			}
			if code, _, e := gwctl(t, "validate", dir); code != 0 {
				t.Fatalf("validate: %d %s", code, e)
			}
			if code, _, _ := gwctl(t, "verify", "--trust", pki("ca.crt"), dir); code != 1 {
				t.Fatalf("verify of an unsigned bundle: want 1, got %d", code)
			}
			if code, _, e := gwctl(t, "sign", "--cert", pki(who+".crt"), "--key", pki(who+".key"), dir); code != 0 {
				t.Fatalf("sign: %d %s", code, e)
			}
			if code, out, e := gwctl(t, "verify", "--trust", pki("ca.crt"), dir); code != 0 || !strings.Contains(out, "verified") {
				t.Fatalf("verify: %d %s %s", code, out, e)
			}
			// An independent verifier accepts what gwctl sign made.
			xmlsec := testenv.RequireTool(t, "xmlsec1")
			out, err := exec.Command(xmlsec, "--verify", "--enabled-key-data", "x509", "--trusted-pem", pki("ca.crt"),
				"--id-attr:ID", "urn:rehabgw:manifest:v1:Manifest", filepath.Join(dir, "manifest.xml")).CombinedOutput()
			if err != nil {
				t.Fatalf("xmlsec1 refused gwctl sign's signature: %v\n%s", err, out)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	base := filepath.Join(t.TempDir(), "b")
	if code, _, e := gwctl(t, "example", "--purpose", "forberedelse", "--out", base,
		"--cert", pki("kommune-101.crt"), "--key", pki("kommune-101.key")); code != 0 {
		t.Fatalf("example: %s", e)
	}
	tampered := filepath.Join(t.TempDir(), "t")
	copyDir(t, base, tampered)
	appendFile(t, filepath.Join(tampered, "resume.xml"), "\n")
	cpr := readManifestCPR(t, base)
	otherPKI := filepath.Join(t.TempDir(), "pki")
	if code, _, e := gwctl(t, "certs", "dev", "--out", otherPKI); code != 0 {
		t.Fatal(e)
	}
	otherCA := filepath.Join(otherPKI, "ca.crt")

	cases := []struct {
		name      string
		args      []string
		want      int
		stderrHas string
	}{
		{name: "ok/validate", args: []string{"validate", base}, want: 0},
		{name: "ok/verify", args: []string{"verify", "--trust", pki("ca.crt"), base}, want: 0},
		{name: "fail/validate-tampered-part", args: []string{"validate", tampered}, want: 1, stderrHas: "resume.xml: part is longer"},
		{name: "fail/verify-tampered-part", args: []string{"verify", "--trust", pki("ca.crt"), tampered}, want: 1, stderrHas: "[part.size_mismatch]"},
		{name: "fail/verify-wrong-trust", args: []string{"verify", "--trust", otherCA, base}, want: 1, stderrHas: "[sig.untrusted]"},
		{name: "usage/verify-trust-is-not-a-ca", args: []string{"verify", "--trust", pki("kommune-101.crt"), base}, want: 2, stderrHas: "not a CA certificate"},
		{name: "fail/sign-as-another-municipality", args: []string{"sign", "--resign", "--cert", pki("kommune-751.crt"), "--key", pki("kommune-751.key"), base}, want: 1, stderrHas: "sig.identity_mismatch"},
		{name: "fail/sign-already-signed", args: []string{"sign", "--cert", pki("kommune-101.crt"), "--key", pki("kommune-101.key"), base}, want: 1},
		{name: "usage/validate-missing-dir", args: []string{"validate", filepath.Join(base, "nope")}, want: 2},
		{name: "usage/validate-no-args", args: []string{"validate"}, want: 2},
		{name: "usage/unknown-command", args: []string{"frobnicate"}, want: 2},
		{name: "usage/unknown-flag", args: []string{"validate", "--frob", base}, want: 2},
		{name: "usage/example-without-purpose", args: []string{"example", "--out", t.TempDir()}, want: 2},
		{name: "usage/example-bad-purpose", args: []string{"example", "--purpose", "x", "--out", t.TempDir()}, want: 2},
		{name: "usage/example-bad-cpr", args: []string{"example", "--purpose", "forberedelse", "--cpr", "9999999999", "--out", t.TempDir()}, want: 2},
		{name: "usage/example-bad-gln", args: []string{"example", "--purpose", "forberedelse", "--gp-gln", "5790001774218", "--out", t.TempDir()}, want: 2},
		{name: "usage/verify-without-trust", args: []string{"verify", base}, want: 2},
		{name: "usage/sign-missing-key", args: []string{"sign", "--cert", pki("kommune-101.crt"), base}, want: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := gwctl(t, tc.args...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.want, out, errOut)
			}
			if tc.stderrHas != "" && !strings.Contains(errOut, tc.stderrHas) {
				t.Fatalf("stderr lacks %q:\n%s", tc.stderrHas, errOut)
			}
			if strings.Contains(out+errOut, cpr) {
				t.Fatalf("CPR number printed")
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	gwctl(t, "example", "--purpose", "indstilling", "--out", dir)
	appendFile(t, filepath.Join(dir, "indstilling.xml"), " ")
	code, out, _ := gwctl(t, "validate", "--json", dir)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var v struct {
		Valid  bool `json:"valid"`
		Errors []struct {
			Code, Part string
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if v.Valid || len(v.Errors) == 0 || v.Errors[0].Code != "part.size_mismatch" || v.Errors[0].Part != "indstilling.xml" {
		t.Fatalf("unexpected report: %+v", v)
	}
}

func TestExampleOverrides(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	code, _, e := gwctl(t, "example", "--purpose", "forberedelse", "--out", dir,
		"--cpr", "0101074001", "--gp-gln", "5790000000005", "--meeting", "2027-02-03")
	if code != 0 {
		t.Fatalf("example: %s", e)
	}
	m, _ := os.ReadFile(filepath.Join(dir, "manifest.xml"))
	for _, want := range []string{"<CPR>0101074001</CPR>", "<GLN>5790000000005</GLN>", "<MeetingDate>2027-02-03</MeetingDate>"} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("manifest lacks %s", want)
		}
	}
	for _, f := range []string{"forberedende-del.xml", "resume.xml"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.Contains(b, []byte("0101074001")) {
			t.Errorf("%s does not carry the overridden CPR", f)
		}
	}
	if code, _, e := gwctl(t, "validate", dir); code != 0 {
		t.Fatalf("overridden example invalid: %s", e)
	}
}

func TestCertsDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if code, _, e := gwctl(t, "certs", "dev", "--out", dir); code != 0 {
		t.Fatal(e)
	}
	for _, f := range []string{"ca.crt", "gateway.crt", "gateway.key", "kommune-101.crt", "kommune-101.key", "kommune-751.crt",
		"kommune-751.key", "region-1084.crt", "region-1084.key", "region-1082.crt", "region-1082.key", "operator.crt", "operator.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("missing %s", f)
		}
		if strings.HasSuffix(f, ".key") && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, st.Mode().Perm())
		}
	}
	if code, _, _ := gwctl(t, "certs", "dev", "--out", dir); code != 2 {
		t.Fatalf("overwrote an existing PKI without --force")
	}
	if code, _, e := gwctl(t, "certs", "dev", "--out", dir, "--force"); code != 0 {
		t.Fatalf("--force: %s", e)
	}
	// A bundle signed with the fresh PKI verifies against its CA only.
	b := filepath.Join(t.TempDir(), "b")
	gwctl(t, "example", "--purpose", "henvisning", "--out", b, "--cert", filepath.Join(dir, "kommune-751.crt"), "--key", filepath.Join(dir, "kommune-751.key"), "--sender", "kommune-751")
	if code, _, e := gwctl(t, "verify", "--trust", filepath.Join(dir, "ca.crt"), b); code != 0 {
		t.Fatalf("verify with the fresh CA: %s", e)
	}
	if code, _, _ := gwctl(t, "verify", "--trust", pki("ca.crt"), b); code != 1 {
		t.Fatalf("verified against another CA")
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(to, 0o755)
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o644)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func readManifestCPR(t *testing.T, dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "manifest.xml"))
	s := string(b)
	i := strings.Index(s, "<CPR>")
	return s[i+5 : i+15]
}
