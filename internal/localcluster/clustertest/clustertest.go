// Package clustertest gives go tests real clusters from localcluster: one
// etcd per test binary, apiservers (each with its kube-controller-manager)
// shared by the tests of a package or owned by one test, everything stopped when the binary ends, and the tail of every
// log a failing test touched printed with its failure.
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		target := clustertest.SharedAPIServer(t, "target") // started once per package
//		client := clustertest.NewAPIServer(t, "client")    // this test's own
//		...
//	}
package clustertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// KeepEnv names the environment variable that, when set, keeps the
// environment's folder (logs, certificates, data) after the tests.
const KeepEnv = "CRPROXY_KEEP_TEST_DIR"

var (
	mu       sync.Mutex
	env      *localcluster.Environment
	envErr   error
	shared   = map[string]*localcluster.APIServer{}
	sequence int
	failed   bool
)

// Main runs the tests and then stops every process the package started.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if env != nil {
		env.Stop()
		if os.Getenv(KeepEnv) == "" && code == 0 && !failed {
			_ = os.RemoveAll(env.Dir)
		} else {
			fmt.Fprintf(os.Stderr, "clustertest: logs and data kept in %s\n", env.Dir)
		}
	}
	os.Exit(code)
}

// Environment returns the test binary's environment, starting etcd on first
// use. Without `make tools` having run, the test fails with that hint.
func Environment(t testing.TB) *localcluster.Environment {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if env == nil && envErr == nil {
		dir, err := os.MkdirTemp("", "crproxy-test-")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		env, envErr = localcluster.Start(ctx, localcluster.Options{Dir: dir})
	}
	if envErr != nil {
		t.Fatalf("starting etcd: %v", envErr)
	}
	return env
}

// SharedAPIServer returns the apiserver named name that the tests of this
// package share, starting it on first use. Tests that share one must keep
// their objects apart (own namespaces or names) and leave it running.
func SharedAPIServer(t testing.TB, name string, opts ...localcluster.APIServerOptions) *localcluster.APIServer {
	t.Helper()
	e := Environment(t)
	mu.Lock()
	s, ok := shared[name]
	mu.Unlock()
	if !ok {
		var err error
		s, err = e.StartAPIServer(context.Background(), name, oneOption(opts))
		if err != nil {
			t.Fatalf("starting shared apiserver %s: %v", name, err)
		}
		mu.Lock()
		shared[name] = s
		mu.Unlock()
	}
	reportServer(t, s)
	return s
}

// NewAPIServer starts an apiserver that belongs to this test alone and is
// stopped when the test ends. Its name gets a unique suffix.
func NewAPIServer(t testing.TB, name string, opts ...localcluster.APIServerOptions) *localcluster.APIServer {
	t.Helper()
	e := Environment(t)
	mu.Lock()
	sequence++
	unique := fmt.Sprintf("%s-%d", name, sequence)
	mu.Unlock()
	s, err := e.StartAPIServer(context.Background(), unique, oneOption(opts))
	if err != nil {
		t.Fatalf("starting apiserver %s: %v", unique, err)
	}
	reportServer(t, s)
	t.Cleanup(s.StopAll)
	return s
}

// reportServer prints the tails of the apiserver's and its controller
// manager's logs if t fails.
func reportServer(t testing.TB, s *localcluster.APIServer) {
	ReportOnFailure(t, s.Name, s.LogPath)
	if s.ControllerManager != nil {
		ReportOnFailure(t, s.Name+" controller manager", s.ControllerManager.LogPath)
	}
}

// ReportOnFailure prints the tail of the log at path when t has failed by
// the time its cleanups run.
func ReportOnFailure(t testing.TB, name, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		mu.Lock()
		failed = true
		mu.Unlock()
		tail := localcluster.LogTail(path, 40)
		t.Logf("---- last lines of %s (%s) ----\n%s", name, path, indent(tail))
	})
}

func oneOption(opts []localcluster.APIServerOptions) localcluster.APIServerOptions {
	if len(opts) == 0 {
		return localcluster.APIServerOptions{}
	}
	return opts[0]
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
