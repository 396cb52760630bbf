package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// hopEnv, when set, makes the test binary serve the plain hop instead of
// running tests; its value is the target's admin kubeconfig.
const hopEnv = "CRPROXY_BENCH_HOP_KUBECONFIG"

// hopAddress is what the hop process prints first on its stdout.
type hopAddress struct {
	URL string `json:"url"`
	CA  []byte `json:"ca"`
}

// serveHop is the hop process: a localcluster.RequestProxy in front of the
// target, serving until its stdin closes (its parent ended).
func serveHop(kubeconfig string) int {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err == nil {
		var p *localcluster.RequestProxy
		if p, err = localcluster.NewRequestProxy(cfg); err == nil {
			defer p.Close()
			rc := p.RESTConfig()
			if err = json.NewEncoder(os.Stdout).Encode(hopAddress{URL: rc.Host, CA: rc.CAData}); err == nil {
				_, _ = io.Copy(io.Discard, os.Stdin)
				return 0
			}
		}
	}
	fmt.Fprintf(os.Stderr, "plain hop: %v\n", err)
	return 1
}

// startHop starts the plain hop as a process of its own, as crproxy is,
// so that a request through it crosses the same process boundaries as one
// through crproxy, and returns how to reach it (with the target config's
// client rate limits; the hop itself authenticates to the target).
func startHop(t *testing.T, target *localcluster.APIServer) *rest.Config {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), hopEnv+"="+target.KubeconfigPath)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	var a hopAddress
	if err := json.NewDecoder(stdout).Decode(&a); err != nil {
		t.Fatalf("the plain hop did not start: %v", err)
	}
	tc := target.RESTConfig()
	return &rest.Config{Host: a.URL, QPS: tc.QPS, Burst: tc.Burst, TLSClientConfig: rest.TLSClientConfig{CAData: a.CA}}
}
