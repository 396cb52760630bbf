package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// TestListRatio lists N objects of about 1 KiB straight from the target,
// straight from crproxy and through the client kube-apiserver, alternating,
// and prints the medians and ratios.
func TestListRatio(t *testing.T) {
	if os.Getenv("CRPROXY_BENCH") == "" {
		t.Skip("set CRPROXY_BENCH=1 to run the benchmarks")
	}
	const n = 10000
	ctx := context.Background()
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	tc, _ := dynamic.NewForConfig(target.RESTConfig())
	padding := strings.Repeat("x", 700)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				u := ownedMyResource(fmt.Sprintf("obj-%05d", i), padding)
				if _, err := tc.Resource(myResources).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()

	paths := startProxy(t, ctx, client, target)
	for _, rv := range []string{"", "0"} {
		times := make([][]time.Duration, len(paths))
		for round := range 7 {
			for i, p := range paths {
				// Raw bytes: the figure is the server's, not client-go's decoding.
				hc, _ := rest.HTTPClientFor(p.cfg)
				start := time.Now()
				resp, err := hc.Get(p.cfg.Host + "/apis/example.com/v1/myresources?resourceVersion=" + rv)
				if err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				d := time.Since(start)
				if resp.StatusCode != 200 || bytes.Count(body, []byte(`"kind":"MyResource"`)) != n {
					t.Fatalf("%s: status %d, %d bytes", p.name, resp.StatusCode, len(body))
				}
				if round > 0 { // the first round warms caches and connections
					times[i] = append(times[i], d)
				}
			}
		}
		base := median(times[0])
		for i, p := range paths {
			m := median(times[i])
			t.Logf("LIST %d objects rv=%q  %-30s median %8s  ratio to target %.2f", n, rv, p.name, m.Round(time.Millisecond), float64(m)/float64(base))
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
