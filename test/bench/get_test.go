package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// TestGetThroughput (B2) gets objects by name from 1, 16 and 64 concurrent
// clients for a few seconds on each path (the target straight, crproxy
// straight, through the client kube-apiserver) and prints the throughput,
// the p99 latency and the ratio of throughput to the target's.
func TestGetThroughput(t *testing.T) {
	if os.Getenv("CRPROXY_BENCH") == "" {
		t.Skip("set CRPROXY_BENCH=1 to run the benchmarks")
	}
	const objects = 1000
	const window = 5 * time.Second
	ctx := context.Background()
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	tc, _ := dynamic.NewForConfig(target.RESTConfig())
	for i := range objects {
		u := ownedMyResource(fmt.Sprintf("obj-%04d", i), fmt.Sprintf("%0700d", i))
		if _, err := tc.Resource(myResources).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	paths := startProxy(t, ctx, client, target)

	// resourceVersion "" (kubectl's consistent read) and "0" (any state;
	// what a cache may always answer at once).
	for _, rv := range []string{"", "0"} {
		for _, clients := range []int{1, 16, 64} {
			var base float64
			for i, p := range paths {
				perSec, p99 := getLoad(t, p.cfg, "?resourceVersion="+rv, clients, objects, window)
				if i == 0 {
					base = perSec
				}
				t.Logf("GET rv=%-2q %2d clients  %-30s %8.0f/s  p99 %7s  throughput ratio to target %.2f", rv, clients, p.name, perSec, p99.Round(10*time.Microsecond), perSec/base)
			}
		}
	}
}

// getLoad runs clients goroutines that GET random objects (raw bytes, so
// the figure is the server's) for window, and returns requests per second
// and the p99 latency.
func getLoad(t *testing.T, cfg *rest.Config, query string, clients, objects int, window time.Duration) (float64, time.Duration) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		lat   []time.Duration
		done  atomic.Int64
		wg    sync.WaitGroup
		until = time.Now().Add(window)
	)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for n := c; time.Now().Before(until); n += clients {
				url := fmt.Sprintf("%s/apis/example.com/v1/namespaces/default/myresources/obj-%04d%s", cfg.Host, n%objects, query)
				start := time.Now()
				resp, err := hc.Get(url)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d", url, resp.StatusCode)
					return
				}
				mine = append(mine, time.Since(start))
				done.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return 0, 0
	}
	return float64(done.Load()) / window.Seconds(), lat[len(lat)*99/100]
}
