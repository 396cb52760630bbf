package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
)

// testContext bounds a test's calls so a hang fails the test instead of the
// whole binary.
func testContext(t *testing.T) context.Context { return testContextWithin(t, 3*time.Minute) }

// testContextWithin is a test's context that ends after d or with the test.
func testContextWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// kubectl runs kubectl as the admin of s and fails the test on error. It
// returns the output with surrounding space trimmed.
func kubectl(t *testing.T, ctx context.Context, s *localcluster.APIServer, args ...string) string {
	t.Helper()
	out, err := s.Kubectl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// kubectlApply applies manifests given as YAML text through stdin.
func kubectlApply(t *testing.T, ctx context.Context, s *localcluster.APIServer, manifest string) {
	t.Helper()
	kubectlApplyOut(t, ctx, s, manifest)
}

// installCRD applies the kit's CRD manifest and waits until it is
// established.
func installCRD(t *testing.T, ctx context.Context, s *localcluster.APIServer, manifest string) {
	t.Helper()
	if err := crproxytest.InstallCRD(ctx, s, manifest); err != nil {
		t.Fatal(err)
	}
}

// apply applies the kit's manifests.
func apply(t *testing.T, ctx context.Context, s *localcluster.APIServer, manifests ...string) {
	t.Helper()
	if err := crproxytest.Apply(ctx, s, manifests...); err != nil {
		t.Fatal(err)
	}
}
