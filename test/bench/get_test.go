package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
// (bench.churn) busy. It reads with resourceVersion "" (consistent), "0"
// (any state) and N (not older than N, a resourceVersion that path served
// just before). For consistent reads through crproxy it also records what
// they cost: the target's requests per 100 reads (and of those its reads
// and writes of the proxied resource), from its apiserver_request_total,
// and the client cluster's SubjectAccessReviews. Bars: crproxy straight at
// 64 clients ≥ 3x the target's throughput; consistent reads at 1 and 16
// clients ≥ 0.8x.
func benchGet(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	m := newMeter(t, e)
	e.inConditions(t, ctx, r, "B2", func(c condition) { getIn(t, ctx, e, r, m, c) })
	for _, rv := range []string{"0", ""} {
		profileCPU(t, ctx, e, fmt.Sprintf("B2-get-rv%q", rv), func(ctx context.Context) {
			_, _, _ = getLoad(ctx, e.paths[pathCrproxy].cfg, "?resourceVersion="+rv, 64, e.loaded, *flagProfileTime+time.Minute, ctx.Done())
		})
	}
}

// readVersion is the resourceVersion a benchmark's reads ask for.
type readVersion struct {
	// name is in the rows' case: rv="", rv="0", rv=N (not older than).
	name string
	// query is the read's query on path i: notOlderThan holds each path's
	// N.
	query func(i int, notOlderThan []string) string
	// notOlderThan: the reads need each path's N first.
	notOlderThan bool
}

// readVersions are the reads of B1 and B2: consistent (kubectl's), any
// state (what a cache may always answer at once), and not older than a
// resourceVersion the reader has seen (an informer's relist). match adds
// resourceVersionMatch=NotOlderThan (lists only; a GET has no match).
func readVersions(match bool) []readVersion {
	return []readVersion{
		{name: `rv=""`, query: func(int, []string) string { return "resourceVersion=" }},
		{name: `rv="0"`, query: func(int, []string) string { return "resourceVersion=0" }},
		{name: "rv=N (not older than)", notOlderThan: true, query: func(i int, n []string) string {
			if match {
				return "resourceVersion=" + n[i] + "&resourceVersionMatch=NotOlderThan"
			}
			return "resourceVersion=" + n[i]
		}},
	}
}

// currentVersions returns each path's current resourceVersion of the
// proxied resource, from a consistent list of at most one object on that
// path: the N of a NotOlderThan read, as a client that has just read there
// would hold it.
func (e *benchEnv) currentVersions(t *testing.T, ctx context.Context, paths []benchPath) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		hc, err := rest.HTTPClientFor(p.cfg)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.Host+"/apis/example.com/v1/myresources?limit=1", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		var list struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		hc.CloseIdleConnections()
		if err != nil || resp.StatusCode != http.StatusOK || list.Metadata.ResourceVersion == "" {
			t.Fatalf("%s: the resourceVersion of a list: status %d, %v", p.name, resp.StatusCode, err)
		}
		out[i] = list.Metadata.ResourceVersion
	}
	return out
}

// getIn measures B2 in one condition of the target.
func getIn(t *testing.T, ctx context.Context, e *benchEnv, r *report, m *meter, c condition) {
	clientCounts := []int{1, 16, 64}
	// What the consistent reads through crproxy straight cost, over every
	// client count, for the note.
	var all readCost
	for _, rv := range readVersions(false) {
		var n []string
		if rv.notOlderThan {
			n = e.currentVersions(t, ctx, e.paths)
		}
		consistent := rv.name == `rv=""`
		perSec := make([][]float64, len(e.paths))
		for _, clients := range clientCounts {
			var requests [numPaths]int64
			var lat [numPaths][]time.Duration
			var cost [numPaths]readCost
			order := []int{pathTarget, pathCrproxy, pathViaClient, pathPlainHop}
			for half := range 2 {
				for _, i := range order {
					var got int64
					var l []time.Duration
					var err error
					load := func() {
						got, l, err = getLoad(ctx, e.paths[i].cfg, "?"+rv.query(i, n), clients, e.loaded, *flagGetWindow/2, nil)
					}
					if consistent && (i == pathCrproxy || i == pathViaClient) {
						if u, ok := m.during(ctx, r, "B2", load); ok {
							cost[i].add(got, u)
						}
					} else {
						load()
					}
					if err != nil {
						t.Fatalf("%s: %v", e.paths[i].name, err)
					}
					requests[i] += got
					lat[i] = append(lat[i], l...)
				}
				if half == 0 {
					order = []int{pathPlainHop, pathViaClient, pathCrproxy, pathTarget}
				}
			}
			throughput, p99 := unmeasured(), unmeasured()
			for i := range e.paths {
				throughput[i] = float64(requests[i]) / flagGetWindow.Seconds()
				p99[i] = ms(percentile(lat[i], 99))
				perSec[i] = append(perSec[i], throughput[i])
			}
			name := fmt.Sprintf("GET %s, %d clients", rv.name, clients)
			rw := c.row("B2", name, "throughput", "/s")
			switch {
			case clients == 64:
				rw = barAtLeast(rw, 3, throughput)
			case consistent && clients == 1:
				// One read at a time asks the target each time: the plain
				// hop is its floor. More share selection lists, and need not.
				rw = floorOf(barAtLeast(rw, 0.8, throughput), throughput, pathPlainHop)
			case consistent:
				rw = barAtLeast(rw, 0.8, throughput)
			}
			r.add(rw, throughput)
			r.add(c.row("B2", name, "p99", "ms"), p99)
			if consistent && cost[pathCrproxy].target != nil {
				addCostRows(r, c.row("B2", name, "", ""), cost)
				all.add(cost[pathCrproxy].reads, cost[pathCrproxy].usage)
			}
		}
		for i, p := range e.paths {
			x := make([]float64, len(clientCounts))
			for j, c := range clientCounts {
				x[j] = float64(c)
			}
			r.addSeries(series{Group: fmt.Sprintf("B2 GET %s throughput%s", rv.name, c.suffix), Path: p.name, XLabel: "concurrent clients", YLabel: "requests/s", LogX: true, X: x, Y: perSec[i]})
		}
	}
	if all.target != nil {
		r.note("B2 cost, %s: %s consistent GETs through crproxy straight (1, 16 and 64 clients) made the target serve %s requests besides configmaps (%s), and the client cluster %s SubjectAccessReviews.",
			c.name(), thousands(float64(all.reads)), thousands(all.target.total()), all.target, thousands(all.client[subjectAccessReviews]))
	}
}

// barAtLeast sets a ratio bar where higher is better.
func barAtLeast(rw row, limit float64, f figures) row {
	rw.BarRatio = ptr(limit)
	if rw.Bar == "" {
		rw.Bar = fmt.Sprintf("straight ≥ %gx target", limit)
	}
	return withBar(rw, f, func(r float64) bool { return r >= limit })
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
				// without its consistency check (the target's state could
				// not be read).
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
