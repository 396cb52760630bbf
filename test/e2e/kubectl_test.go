package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// testContext bounds a test's calls so a hang fails the test instead of the
// whole binary.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

// installCRD applies a CRD manifest and waits until it is established.
func installCRD(t *testing.T, ctx context.Context, s *localcluster.APIServer, file, name string) {
	t.Helper()
	kubectl(t, ctx, s, "apply", "-f", file)
	kubectl(t, ctx, s, "wait", "--for=condition=Established", "crd/"+name, "--timeout=60s")
}
