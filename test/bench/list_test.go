package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// benchList (B1) lists all loaded objects on the three paths in turn,
// bench.list-rounds times per resourceVersion ("" and "0"), and records
// p50 and p99, with the target quiet and then (bench.churn) busy. Bar:
// crproxy straight ≤ 0.1x the target's median, through the client
// kube-apiserver ≤ 0.5x.
func benchList(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	n := e.loaded + e.extra(t, ctx, e.loaded)
	clients := make([]*http.Client, len(e.paths))
	for i, p := range e.paths {
		clients[i], _ = rest.HTTPClientFor(p.cfg)
	}
	e.inConditions(t, ctx, r, "B1", func(c condition) { listIn(t, ctx, e, r, clients, n, c) })
	profileCPU(t, ctx, e, "B1-list", func(ctx context.Context) {
		for ctx.Err() == nil {
			if _, err := listOnce(ctx, clients[pathCrproxy], e.paths[pathCrproxy], "0", -1); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	})
}

// listIn measures B1 in one condition of the target.
func listIn(t *testing.T, ctx context.Context, e *benchEnv, r *report, clients []*http.Client, n int, c condition) {
	for _, rv := range []string{"", "0"} {
		times := make([][]time.Duration, len(e.paths))
		for round := range *flagListRounds + 1 {
			for i, p := range e.paths {
				d, err := listOnce(ctx, clients[i], p, rv, n)
				if err != nil {
					t.Fatal(err)
				}
				if round > 0 { // the first round warms caches and connections
					times[i] = append(times[i], d)
				}
			}
		}
		name := fmt.Sprintf("LIST %d objects rv=%q%s", n, rv, c.suffix)
		for _, q := range []float64{50, 99} {
			var f figures
			for i := range e.paths {
				f[i] = ms(percentile(times[i], q))
			}
			rw := row{ID: "B1", Case: name, Metric: fmt.Sprintf("p%g", q), Unit: "ms"}
			if q == 50 {
				rw = barAtMost(rw, 0.1, f)
				rw.Bar = "straight ≤ 0.1x, through client ≤ 0.5x"
				rw.Met = ptr(*rw.Met && f[pathViaClient] <= 0.5*f[pathTarget])
			}
			r.add(rw, f)
		}
	}
}

// listOnce lists the objects as raw bytes (the figure is the server's, not
// client-go's decoding), checks that n came back (n < 0: any), and returns
// how long it took.
func listOnce(ctx context.Context, hc *http.Client, p benchPath, rv string, n int) (time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.Host+"/apis/example.com/v1/myresources?resourceVersion="+rv, nil)
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	if got := bytes.Count(body, []byte(`"kind":"MyResource"`)); resp.StatusCode != http.StatusOK || (n >= 0 && got != n) {
		return 0, fmt.Errorf("%s: status %d, %d of %d objects", p.name, resp.StatusCode, got, n)
	}
	return d, nil
}
