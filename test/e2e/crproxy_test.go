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
	address     string
	port        int
	apiServices []string
}

// proxyConfig describes the crproxy configuration of a test. The zero value
// proxies myresources.example.com/v1 of the target "target" in owned mode
// for the client default/client.
type proxyConfig struct {
	ClientName    string // default "client"
	ClientProject string // default "default"
	Access        string // owned (default) or all
	// CustomResources, when set, replaces the single myresources key: the
	// YAML mapping under experimental.proxy.customResources, indented by
	// six spaces.
	CustomResources string
	// Targets, when set, replaces the single target entry "target".
	Targets []proxyTarget
	// APIServices are the APIServices to wait for (default v1.example.com).
	APIServices []string
}

// proxyTarget is one entry of the configuration's targets.
type proxyTarget struct {
	Name, Project string
	Server        *localcluster.APIServer
	// Kubeconfig, when set, replaces Server's (to reach it through a
	// FaultProxy).
	Kubeconfig string
}

// startProxy writes a configuration for client → target and starts
// crproxy on it. It is stopped when the test ends.
func startProxy(t *testing.T, client, target *localcluster.APIServer, pc proxyConfig) *proxy {
	t.Helper()
	if pc.ClientName == "" {
		pc.ClientName = "client"
	}
	if pc.ClientProject == "" {
		pc.ClientProject = "default"
	}
	if pc.Access == "" {
		pc.Access = "owned"
	}
	if pc.CustomResources == "" {
		pc.CustomResources = fmt.Sprintf(`      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster:
          name: target
        accessResources: %s
`, pc.Access)
	}
	if len(pc.Targets) == 0 {
		pc.Targets = []proxyTarget{{Name: "target", Server: target}}
	}
	if len(pc.APIServices) == 0 {
		pc.APIServices = []string{"v1.example.com"}
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "crproxy.yaml")
	var targets strings.Builder
	for _, tg := range pc.Targets {
		kubeconfig := tg.Kubeconfig
		if kubeconfig == "" {
			kubeconfig = tg.Server.KubeconfigPath
		}
		fmt.Fprintf(&targets, "  - name: %s\n    project: %q\n    kubeconfig: %s\n", tg.Name, tg.Project, kubeconfig)
	}
	config := fmt.Sprintf(`client:
  project: %s
  name: %s
  kubeconfig: %s
targets:
%sexperimental:
  proxy:
    customResources:
%s`, pc.ClientProject, pc.ClientName, client.KubeconfigPath, targets.String(), pc.CustomResources)
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, client: client, configPath: configPath, dataDir: filepath.Join(dir, "data"), apiServices: pc.APIServices}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start runs crproxy (again, over the same data folder) and waits until the
// client cluster reports its APIService available.
func (p *proxy) start() {
	p.t.Helper()
	// The same port across restarts, as a deployment's Service is stable:
	// a new port would leave the aggregator routing to the old one until it
	// notices the APIService changed.
	if p.port == 0 {
		port, err := localcluster.FreePort()
		if err != nil {
			p.t.Fatal(err)
		}
		p.port = port
	}
	o := serve.NewOptions()
	o.ConfigFile = p.configPath
	o.DataDir = p.dataDir
	o.Serving.BindPort = p.port
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
	for _, name := range p.apiServices {
		version, group, _ := strings.Cut(name, ".")
		if err := p.client.WaitForAPIService(ctx, group+"/"+version); err != nil {
			p.t.Fatal(err)
		}
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
