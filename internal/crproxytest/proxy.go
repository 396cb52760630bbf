package crproxytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/cli/serve"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/pkg/config"
)

// Options describe one crproxy.
type Options struct {
	// Client is the client cluster crproxy registers its APIServices in;
	// Start waits until they are available there.
	Client *localcluster.APIServer
	// Config is crproxy's configuration (see Config).
	Config config.Config
	// Dir holds its configuration, data folder and log; it must exist.
	Dir string
	// Process runs bin/crproxy as its own process (localcluster.Crproxy)
	// instead of in this one.
	Process bool
	// ExtraArgs are more `crproxy serve` flags, for a process.
	ExtraArgs []string
	// Profiling serves pprof (in this process; a process takes
	// --profiling in ExtraArgs).
	Profiling bool
	// ServiceName names the Service of its APIServices; default
	// "crproxy-" and Dir's base name.
	ServiceName string
	// EmptyGroupVersions lets Start return while group/versions have no
	// resources at the target yet (their CRDs come later): it then waits
	// only until each APIService is available, or withdrawn (crproxy
	// withdraws the APIService of a group/version the target serves no
	// resource of).
	EmptyGroupVersions bool
	// Unregistered runs crproxy without registering anything in the
	// client cluster (serve --register=false): callers reach it straight
	// (DirectConfig), and several crproxies of different clients may
	// share one client cluster. Start then waits for /readyz only.
	Unregistered bool
}

// Proxy is one crproxy serving a client cluster from its targets. Start and
// Stop may alternate: each start reuses the data folder and the port, as a
// restarted pod behind a stable Service would.
type Proxy struct {
	// ConfigPath, DataDir and LogPath are its configuration, data folder
	// and log (appended to by every start).
	ConfigPath, DataDir, LogPath string
	// Port is the port it listens on, 127.0.0.1 only.
	Port int

	o       Options
	gvs     []string
	process *localcluster.Crproxy
	cancel  context.CancelFunc
	done    chan error
}

// New writes o.Config into o.Dir and prepares a crproxy on a free port.
func New(o Options) (*Proxy, error) {
	if o.Client == nil || o.Dir == "" {
		return nil, errors.New("crproxytest: Options.Client and Options.Dir are required")
	}
	if o.ServiceName == "" {
		o.ServiceName = "crproxy-" + filepath.Base(o.Dir)
	}
	p := &Proxy{
		ConfigPath: filepath.Join(o.Dir, "crproxy.yaml"),
		DataDir:    filepath.Join(o.Dir, "data"),
		LogPath:    filepath.Join(o.Dir, "crproxy.log"),
		o:          o,
	}
	if err := WriteConfig(p.ConfigPath, o.Config); err != nil {
		return nil, err
	}
	for _, gv := range o.Config.GroupVersions() {
		p.gvs = append(p.gvs, gv.GroupVersion.String())
	}
	if o.Process {
		binDir, err := localcluster.FindBinDir()
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(binDir, "crproxy")); err != nil {
			return nil, fmt.Errorf("bin/crproxy is missing: run `make build` first (%w)", err)
		}
		p.process, err = localcluster.NewCrproxy(localcluster.CrproxyOptions{BinDir: binDir, Dir: o.Dir, ConfigPath: p.ConfigPath, ServiceName: o.ServiceName, ExtraArgs: extraArgs(o)})
		if err != nil {
			return nil, err
		}
		p.Port = p.process.Port
		return p, nil
	}
	port, err := localcluster.FreePort()
	if err != nil {
		return nil, err
	}
	p.Port = port
	return p, nil
}

// extraArgs are the serve flags of a crproxy process.
func extraArgs(o Options) []string {
	args := slices.Clone(o.ExtraArgs)
	if o.Unregistered {
		args = append(args, "--register=false")
	}
	return args
}

// Reconfigure writes c as the configuration of crproxy's next start; the
// APIServices waited for stay those of the first configuration.
func (p *Proxy) Reconfigure(c config.Config) error {
	return WriteConfig(p.ConfigPath, c)
}

// Start runs crproxy and waits until the client cluster reports each of its
// APIServices available.
func (p *Proxy) Start(ctx context.Context) error {
	if p.process != nil {
		if err := p.process.Start(ctx); err != nil {
			return err
		}
	} else if err := p.startInProcess(); err != nil {
		return err
	}
	if p.o.Unregistered {
		return nil
	}
	for _, gv := range p.gvs {
		wait := p.o.Client.WaitForAPIService
		if p.o.EmptyGroupVersions {
			wait = p.o.Client.WaitForAPIServiceAvailableOrAbsent
		}
		if err := wait(ctx, gv); err != nil {
			return err
		}
	}
	return nil
}

// startInProcess runs serve.Run in a goroutine and waits until it listens.
func (p *Proxy) startInProcess() error {
	if p.cancel != nil {
		return errors.New("crproxytest: crproxy is running already")
	}
	log, err := fileLogger(p.LogPath)
	if err != nil {
		return err
	}
	o := serve.NewOptions()
	o.ConfigFile = p.ConfigPath
	o.DataDir = p.DataDir
	o.Serving.BindPort = p.Port
	o.ServiceName = p.o.ServiceName
	o.Profiling = p.o.Profiling
	o.Register = !p.o.Unregistered
	o.Logger = log
	ready := make(chan struct{})
	o.Ready = func(string) { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, o)
		_ = log.Sync()
	}()
	select {
	case <-ready:
		p.cancel, p.done = cancel, done
		return nil
	case err := <-done:
		cancel()
		return fmt.Errorf("crproxy ended at start: %v\n%s", err, localcluster.LogTail(p.LogPath, 20))
	}
}

// Stop ends crproxy and waits until it is gone (30 s at most in this
// process; SIGTERM, then SIGKILL after 10 s, for a process). It returns
// what crproxy ended with.
func (p *Proxy) Stop() error {
	if p.process != nil {
		p.process.Stop()
		return nil
	}
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("crproxy did not stop within 30s")
	}
}

// Kill ends a crproxy process at once with SIGKILL, as a crash would.
// Only for Options.Process.
func (p *Proxy) Kill() {
	if p.process == nil {
		panic("crproxytest: Kill needs Options.Process")
	}
	p.process.Kill()
}

// Process is the crproxy process of Options.Process, nil in this process.
func (p *Proxy) Process() *localcluster.Crproxy { return p.process }

// Address is where crproxy listens: 127.0.0.1:Port.
func (p *Proxy) Address() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// URL is https://Address.
func (p *Proxy) URL() string { return "https://" + p.Address() }

// ServingCAFile is crproxy's self-signed serving certificate, which
// callers that reach it straight can trust.
func (p *Proxy) ServingCAFile() string { return filepath.Join(p.DataDir, "certs", "apiserver.crt") }

// DirectConfig reaches crproxy straight, skipping the aggregator, as the
// client-cluster user with a client certificate (and groups), trusting
// crproxy's serving certificate.
func (p *Proxy) DirectConfig(user string, groups ...string) (*rest.Config, error) {
	cfg, err := p.o.Client.ConfigFor(user, groups...)
	if err != nil {
		return nil, err
	}
	cfg.Host = p.URL()
	cfg.TLSClientConfig.CAData = nil
	cfg.TLSClientConfig.CAFile = p.ServingCAFile()
	return cfg, nil
}

// fileLogger logs to path, which outlives the test's goroutines (a
// testing.T logger would not).
func fileLogger(path string) (*zap.Logger, error) {
	cfg := zap.NewDevelopmentConfig()
	cfg.OutputPaths = []string{path}
	cfg.ErrorOutputPaths = []string{path}
	return cfg.Build()
}
