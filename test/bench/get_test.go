package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// benchGet (B2) gets loaded objects by name from 1, 16 and 64 concurrent
// clients on each path, for bench.get-window per path split in two halves
// (paths in order, then in reverse, so drift cancels), and records the
// throughput and the p99 latency, with the target quiet and then
// (bench.churn) busy. For consistent reads (rv "") through crproxy it also
// records what they cost the target: the requests it served per 100 reads,
// from its apiserver_request_total. Bar: crproxy straight at 64 clients ≥
// 3x the target's throughput.
func benchGet(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	metrics, err := rest.HTTPClientFor(e.target.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer metrics.CloseIdleConnections()
	e.inConditions(t, ctx, r, "B2", func(c condition) { getIn(t, ctx, e, r, metrics, c) })
	for _, rv := range []string{"0", ""} {
		profileCPU(t, ctx, e, fmt.Sprintf("B2-get-rv%q", rv), func(ctx context.Context) {
			_, _, _ = getLoad(ctx, e.paths[pathCrproxy].cfg, "?resourceVersion="+rv, 64, e.loaded, *flagProfileTime+time.Minute, ctx.Done())
		})
	}
}

// getIn measures B2 in one condition of the target; metrics reads the
// target's /metrics.
func getIn(t *testing.T, ctx context.Context, e *benchEnv, r *report, metrics *http.Client, c condition) {
	clientCounts := []int{1, 16, 64}
	// What the consistent reads through crproxy straight cost the target,
	// over every client count, for the note; costOK is false once /metrics
	// could not be read.
	costAll, readsAll, costOK := requestCounts{}, int64(0), true
	// resourceVersion "" (kubectl's consistent read) and "0" (any state;
	// what a cache may always answer at once).
	for _, rv := range []string{"0", ""} {
		perSec := make([][]float64, len(e.paths))
		for _, clients := range clientCounts {
			var requests [3]int64
			var lat [3][]time.Duration
			var cost [3]requestCounts
			order := []int{pathTarget, pathCrproxy, pathViaClient}
			for half := range 2 {
				for _, i := range order {
					load := func() (int64, []time.Duration, error) {
						return getLoad(ctx, e.paths[i].cfg, "?resourceVersion="+rv, clients, e.loaded, *flagGetWindow/2, nil)
					}
					var n int64
					var l []time.Duration
					var err error
					if rv == "" && i != pathTarget && costOK {
						var served requestCounts
						served, err = e.servedDuring(ctx, metrics, func() { n, l, err = load() })
						if err != nil {
							r.note("B2: the target's /metrics could not be read, so there is no cost figure: %v", err)
							costOK = false
						} else if cost[i] == nil {
							cost[i] = served
						} else {
							cost[i].add(served)
						}
					} else {
						n, l, err = load()
					}
					if err != nil {
						t.Fatalf("%s: %v", e.paths[i].name, err)
					}
					requests[i] += n
					lat[i] = append(lat[i], l...)
				}
				if half == 0 {
					order = []int{pathViaClient, pathCrproxy, pathTarget}
				}
			}
			var throughput, p99 figures
			for i := range e.paths {
				throughput[i] = float64(requests[i]) / flagGetWindow.Seconds()
				p99[i] = ms(percentile(lat[i], 99))
				perSec[i] = append(perSec[i], throughput[i])
			}
			name := fmt.Sprintf("GET rv=%q, %d clients%s", rv, clients, c.suffix)
			rw := row{ID: "B2", Case: name, Metric: "throughput", Unit: "/s"}
			if clients == 64 {
				rw = barAtLeast(rw, 3, throughput)
			}
			r.add(rw, throughput)
			r.add(row{ID: "B2", Case: name, Metric: "p99", Unit: "ms"}, p99)
			if rv == "" && costOK {
				per100 := figures{math.NaN(), math.NaN(), math.NaN()}
				for _, i := range []int{pathCrproxy, pathViaClient} {
					if requests[i] > 0 {
						per100[i] = 100 * cost[i].total() / float64(requests[i])
					}
				}
				r.add(row{ID: "B2", Case: name, Metric: "target requests per 100 reads", Unit: "req"}, per100)
				costAll.add(cost[pathCrproxy])
				readsAll += requests[pathCrproxy]
			}
		}
		for i, p := range e.paths {
			x := make([]float64, len(clientCounts))
			for j, c := range clientCounts {
				x[j] = float64(c)
			}
			r.addSeries(series{Group: fmt.Sprintf("B2 GET rv=%q throughput%s", rv, c.suffix), Path: p.name, XLabel: "concurrent clients", YLabel: "requests/s", LogX: true, X: x, Y: perSec[i]})
		}
	}
	if costOK {
		state := "quiet"
		if c.busy {
			state = "busy"
		}
		r.note("B2 cost, %s: %s consistent GETs through crproxy straight (1, 16 and 64 clients) made the target serve %s requests besides configmaps: %s.",
			state, thousands(float64(readsAll)), thousands(costAll.total()), costAll)
	}
}

// servedDuring runs load and returns the requests the target served
// meanwhile, by its apiserver_request_total (without configmaps, the
// churner's).
func (e *benchEnv) servedDuring(ctx context.Context, metrics *http.Client, load func()) (requestCounts, error) {
	cfg := e.target.RESTConfig()
	before, err := targetRequests(ctx, metrics, cfg)
	if err != nil {
		load()
		return nil, err
	}
	load()
	after, err := targetRequests(ctx, metrics, cfg)
	if err != nil {
		return nil, err
	}
	return after.since(before), nil
}

// barAtLeast sets a ratio bar where higher is better.
func barAtLeast(rw row, limit float64, f figures) row {
	rw.BarRatio = ptr(limit)
	rw.Bar = fmt.Sprintf("straight ≥ %gx target", limit)
	if f[pathTarget] > 0 {
		rw.Met = ptr(f[pathCrproxy]/f[pathTarget] >= limit)
	}
	return rw
}

// getLoad runs clients goroutines that GET objects by name (raw bytes, so
// the figure is the server's) for window or until stop closes, and returns
// how many requests succeeded and their latencies.
func getLoad(ctx context.Context, cfg *rest.Config, query string, clients, objects int, window time.Duration, stop <-chan struct{}) (int64, []time.Duration, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, nil, err
	}
	defer hc.CloseIdleConnections()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		done     atomic.Int64
		wg       sync.WaitGroup
		until    = time.Now().Add(window)
	)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var err error
			for n := c; time.Now().Before(until) && err == nil; n += clients {
				select {
				case <-stop:
					err = context.Canceled
					continue
				default:
				}
				url := cfg.Host + "/apis/example.com/v1/namespaces/default/myresources/" + objectName(n%objects) + query
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				start := time.Now()
				var resp *http.Response
				if resp, err = hc.Do(req); err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("GET %s: %d", url, resp.StatusCode)
					continue
				}
				// The target is up: a Warning would mean a read served
				// without its consistency check (the probe failed).
				if w := resp.Header.Get("Warning"); w != "" {
					err = fmt.Errorf("GET %s: Warning %q", url, w)
					continue
				}
				mine = append(mine, time.Since(start))
				done.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			if err != nil && err != context.Canceled && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return done.Load(), lat, firstErr
}
