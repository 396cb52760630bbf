package bench

import (
	"context"
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

// referenceEnv, when set, makes the test binary serve the reference paths
// (the plain hop and the replay) instead of running tests; its value is
// the target's admin kubeconfig.
const referenceEnv = "CRPROXY_BENCH_REFERENCE_KUBECONFIG"

// serverAddress is how to reach one reference server.
type serverAddress struct {
	URL string `json:"url"`
	CA  []byte `json:"ca"`
}

// referenceAddresses is what the reference process prints first on its
// stdout.
type referenceAddresses struct {
	Hop    serverAddress `json:"hop"`
	Replay serverAddress `json:"replay"`
}

// serveReferences is the reference process: a localcluster.RequestProxy
// in front of the target and a replay of it, serving until its stdin
// closes (its parent ended).
func serveReferences(kubeconfig string) int {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err == nil {
		var p *localcluster.RequestProxy
		if p, err = localcluster.NewRequestProxy(cfg); err == nil {
			defer p.Close()
			var rp *replay
			if rp, err = newReplay(context.Background(), cfg); err == nil {
				defer rp.Close()
				hop := p.RESTConfig()
				a := referenceAddresses{Hop: serverAddress{URL: hop.Host, CA: hop.CAData}, Replay: rp.address()}
				if err = json.NewEncoder(os.Stdout).Encode(a); err == nil {
					_, _ = io.Copy(io.Discard, os.Stdin)
					return 0
				}
			}
		}
	}
	fmt.Fprintf(os.Stderr, "reference servers: %v\n", err)
	return 1
}

// startReferences starts the reference servers as a process of their
// own, as crproxy is, so that a request to them crosses the same process
// boundaries as one to crproxy, and returns how to reach the plain hop and
// the replay (with the target config's client rate limits; the hop itself
// authenticates to the target, the replay serves anyone).
func startReferences(t *testing.T, target *localcluster.APIServer) (hop, replay *rest.Config) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), referenceEnv+"="+target.KubeconfigPath)
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
	var a referenceAddresses
	if err := json.NewDecoder(stdout).Decode(&a); err != nil {
		t.Fatalf("the reference servers did not start: %v", err)
	}
	tc := target.RESTConfig()
	config := func(s serverAddress) *rest.Config {
		return &rest.Config{Host: s.URL, QPS: tc.QPS, Burst: tc.Burst, TLSClientConfig: rest.TLSClientConfig{CAData: s.CA}}
	}
	return config(a.Hop), config(a.Replay)
}
