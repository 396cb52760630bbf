package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Options configures an Environment.
type Options struct {
	// Dir holds every process's data, certificates and logs. Required.
	Dir string
	// BinDir holds etcd, kube-apiserver and kubectl; FindBinDir when empty.
	BinDir string
}

// Environment is one etcd and the apiservers started on it.
type Environment struct {
	// Dir holds everything the environment writes.
	Dir string
	// BinDir is where its binaries come from.
	BinDir string
	// Etcd is the environment's single etcd.
	Etcd *Etcd

	mu      sync.Mutex
	servers map[string]*APIServer
}

// Start starts etcd. Apiservers are added with StartAPIServer.
func Start(ctx context.Context, opts Options) (*Environment, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("localcluster: Options.Dir is required")
	}
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	etcd, err := startEtcd(ctx, binDir, filepath.Join(opts.Dir, "etcd"))
	if err != nil {
		return nil, err
	}
	return &Environment{Dir: opts.Dir, BinDir: binDir, Etcd: etcd, servers: map[string]*APIServer{}}, nil
}

// StartAPIServer starts a kube-apiserver named name (unique in the
// environment) on the shared etcd with a kube-controller-manager beside it
// (unless opts.Bare), and waits until both are ready.
func (e *Environment) StartAPIServer(ctx context.Context, name string, opts APIServerOptions) (*APIServer, error) {
	e.mu.Lock()
	if _, ok := e.servers[name]; ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("localcluster: an apiserver named %q already exists", name)
	}
	e.servers[name] = nil // reserve the name
	e.mu.Unlock()

	dir := filepath.Join(e.Dir, name)
	s, err := newAPIServer(e.BinDir, dir, name, e.Etcd.ClientURL, opts)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = s.Start(ctx)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		if s != nil {
			s.Kill()
			if s.ControllerManager != nil {
				s.ControllerManager.proc.kill()
			}
		}
		delete(e.servers, name)
		return nil, err
	}
	e.servers[name] = s
	return s, nil
}

// APIServers returns the apiservers started so far.
func (e *Environment) APIServers() []*APIServer {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*APIServer
	for _, s := range e.servers {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Stop stops every apiserver and its controller manager, then etcd.
func (e *Environment) Stop() {
	var wg sync.WaitGroup
	for _, s := range e.APIServers() {
		wg.Add(1)
		go func() { defer wg.Done(); s.StopAll() }()
	}
	wg.Wait()
	e.Etcd.Stop()
}
