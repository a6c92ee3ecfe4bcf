package e2e_test

import (
	"os"
	"testing"

	"github.com/rehabgw/rehabgw/internal/e2e"
)

// TestMain builds gatewayd and gwctl once for every test of the package.
func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
