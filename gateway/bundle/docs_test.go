package bundle_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehabgw/rehabgw/internal/testenv"
)

// TestVendorCommandLines runs every xmllint, xmlsec1 and sha256sum line of
// docs/bundle-format.md section 7 from the repository root: the commands we
// tell vendors to use must work on the examples we ship.
func TestVendorCommandLines(t *testing.T) {
	root := repoRoot(t)
	doc := readFile(t, filepath.Join(root, "docs", "bundle-format.md"))
	sec := section(string(doc), "## 7.")
	var ran int
	sc := bufio.NewScanner(strings.NewReader(sec))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "xmllint", "xmlsec1", "sha256sum":
		default:
			continue
		}
		t.Run(fields[0]+"/"+fields[len(fields)-1], func(t *testing.T) {
			testenv.RequireTool(t, fields[0])
			cmd := exec.Command(fields[0], fields[1:]...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
		})
		ran++
	}
	if ran < 9 {
		t.Fatalf("found only %d command lines in section 7", ran)
	}
	// The worked example names the committed example's bundle ID.
	m := readFile(t, filepath.Join(root, "examples", "indstilling", "manifest.xml"))
	i := bytes.Index(m, []byte("<BundleID>"))
	id := string(m[i+10 : i+46])
	if !strings.Contains(section(string(doc), "## 8."), id) {
		t.Fatalf("docs/bundle-format.md section 8 does not show the current example (bundle %s)", id)
	}
}

func section(doc, heading string) string {
	i := strings.Index(doc, heading)
	if i < 0 {
		return ""
	}
	rest := doc[i+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
