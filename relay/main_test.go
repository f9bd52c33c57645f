package relay

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if any goroutine outlives the tests, and
// removes the shared directory of generated files.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if fx.dir != "" {
			if err := os.RemoveAll(fx.dir); err != nil && code == 0 {
				code = 1
			}
		}
		os.Exit(code)
	}))
}
