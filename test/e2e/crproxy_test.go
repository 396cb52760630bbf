package e2e

import (
	"testing"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/pkg/config"
)

// startProxy runs crproxy in the test process (so -race sees it) with cfg,
// serving client, and waits until client serves its group/versions. It is
// stopped when the test ends.
func startProxy(t *testing.T, client *localcluster.APIServer, cfg config.Config) *crproxytest.Proxy {
	t.Helper()
	return crproxytest.StartProxy(t, crproxytest.Options{Client: client, Config: cfg})
}

// stopProxy stops p and fails the test if crproxy ended with an error.
func stopProxy(t *testing.T, p *crproxytest.Proxy) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Fatalf("crproxy ended with %v", err)
	}
}
