package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/crproxy/crproxy/internal/cli/serve"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// fileLogger logs to path (the log outlives the test's goroutines, which a
// testing.T logger would not) and prints its tail if the test fails.
func fileLogger(t *testing.T, path string) *zap.Logger {
	cfg := zap.NewDevelopmentConfig()
	cfg.OutputPaths = []string{path}
	cfg.ErrorOutputPaths = []string{path}
	log, err := cfg.Build()
	if err != nil {
		t.Fatal(err)
	}
	clustertest.ReportOnFailure(t, "crproxy", path)
	return log
}

// proxy is one crproxy running in the test process (so -race sees it),
// serving client from target.
type proxy struct {
	t          *testing.T
	client     *localcluster.APIServer
	configPath string
	dataDir    string
	cancel     context.CancelFunc
	done       chan error
	// address is where crproxy listens (host:port).
	address string
}

// proxyConfig is a configuration with one proxied resource key.
type proxyConfig struct {
	ClientName string // default "client"
	Access     string // owned (default) or all
}

// startProxy writes a configuration for client → target and starts
// crproxy on it. It is stopped when the test ends.
func startProxy(t *testing.T, client, target *localcluster.APIServer, pc proxyConfig) *proxy {
	t.Helper()
	if pc.ClientName == "" {
		pc.ClientName = "client"
	}
	if pc.Access == "" {
		pc.Access = "owned"
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "crproxy.yaml")
	config := fmt.Sprintf(`client:
  project: default
  name: %s
  kubeconfig: %s
targets:
  - name: target
    kubeconfig: %s
experimental:
  proxy:
    customResources:
      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster:
          name: target
        accessResources: %s
`, pc.ClientName, client.KubeconfigPath, target.KubeconfigPath, pc.Access)
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, client: client, configPath: configPath, dataDir: filepath.Join(dir, "data")}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start runs crproxy (again, over the same data folder) and waits until the
// client cluster reports its APIService available.
func (p *proxy) start() {
	p.t.Helper()
	port, err := localcluster.FreePort()
	if err != nil {
		p.t.Fatal(err)
	}
	o := serve.NewOptions()
	o.ConfigFile = p.configPath
	o.DataDir = p.dataDir
	o.Serving.BindPort = port
	o.ServiceName = "crproxy-" + filepath.Base(filepath.Dir(p.dataDir))
	o.Logger = fileLogger(p.t, filepath.Join(filepath.Dir(p.dataDir), "crproxy.log"))
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan error, 1)
	ready := make(chan struct{})
	o.Ready = func(address string) { p.address = address; close(ready) }
	go func() { p.done <- serve.Run(ctx, o) }()
	select {
	case <-ready:
	case err := <-p.done:
		p.cancel = nil
		p.t.Fatalf("crproxy ended at start: %v", err)
	}
	ctx, cancelWait := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancelWait()
	if out, err := p.client.Kubectl(ctx, "wait", "--for=condition=Available", "apiservice/v1.example.com", "--timeout=60s"); err != nil {
		p.t.Fatalf("crproxy's APIService did not become available: %v\n%s", err, out)
	}
	// The aggregator publishes the group in discovery a moment after the
	// APIService is available; api-resources reads discovery afresh.
	for {
		out, err := p.client.Kubectl(ctx, "api-resources", "--api-group=example.com", "-o", "name")
		if err == nil && strings.Contains(out, "myresources.example.com") {
			return
		}
		if ctx.Err() != nil {
			p.t.Fatalf("myresources never appeared in the client's discovery: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop ends crproxy and waits until it is gone.
func (p *proxy) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("crproxy ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		p.t.Errorf("crproxy did not stop within 30s")
	}
}
