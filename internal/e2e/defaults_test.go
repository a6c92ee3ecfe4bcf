package e2e_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/internal/e2e"
)

// TestMakeRunDefaults proves the README's `make run` path: the real
// `gatewayd --data DIR --listen 127.0.0.1:PORT` without a configuration
// (embedded defaults; it generates DIR/pki) prints a push command line on
// stderr, and that exact command line, with bin/gwctl replaced by the built
// gwctl and /tmp/b1 by a temporary directory, succeeds.
func TestMakeRunDefaults(t *testing.T) {
	data := filepath.Join(t.TempDir(), "var")
	gw := e2e.StartGatewaydDefaults(t, data)

	const intro = "Push an example bundle:\n\n"
	var block string
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := gw.Log()
		if i := strings.Index(log, intro); i >= 0 {
			rest := log[i+len(intro):]
			if j := strings.Index(rest, "\n\n"); j >= 0 {
				block = rest[:j]
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatewayd printed no push command within 10 s:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(block, "bin/gwctl push") || !strings.Contains(block, "/tmp/b1") {
		t.Fatalf("unexpected push command:\n%s", block)
	}
	b1 := filepath.Join(t.TempDir(), "b1")
	cmdline := strings.ReplaceAll(strings.ReplaceAll(block, "bin/gwctl", e2e.GwctlBin(t)), "/tmp/b1", b1)
	t.Logf("running:\n%s", cmdline)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the printed push command: %v\nstdout: %.2000s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "<Acceptance") {
		t.Fatalf("the push printed no receipt:\n%.2000s", stdout.String())
	}
	if ds := e2e.AllInbox(t, gw.Client(e2e.Recipient)); len(ds) != 1 {
		t.Fatalf("the region's inbox holds %d deliveries, want the pushed example", len(ds))
	}
}
