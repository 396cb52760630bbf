package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

const (
	// subsetLabel marks the first listSubset loaded objects (value "yes"):
	// B1's smaller list selects them from all the loaded ones.
	subsetLabel = "bench-subset"
	listSubset  = 1000
)

// listCase is one list of B1.
type listCase struct {
	name string
	// query selects the objects ("" for all); n is how many there are.
	query string
	n     int
	// subset is the smaller list, whose bar is its own.
	subset bool
}

// benchList (B1) lists, on every path and the replay in turn, bench.list-rounds
// times per resourceVersion ("", "0" and N, not older than): all loaded
// objects, and the listSubset of them that carry subsetLabel, by label
// selector (the same objects, so one run has both sizes). It records p50
// and p99, with the target quiet and then (bench.churn) busy, and what the
// consistent lists through crproxy cost (addCostRows). Bars, on the
// medians: crproxy straight ≤ 0.1x the target's, through the client
// kube-apiserver ≤ 0.5x; for consistent lists of all objects straight
// ≤ 0.12x quiet (and through the client ≤ 0.5x) and ≤ 0.4x busy; for
// consistent lists of the subset straight ≤ 1.2x busy.
func benchList(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	n := e.loaded + e.extra(t, ctx, e.loaded)
	sub := min(listSubset, e.loaded)
	lists := []listCase{
		{name: fmt.Sprintf("LIST %d objects", n), n: n},
		{name: fmt.Sprintf("LIST %d of %d objects by label selector", sub, n), query: "labelSelector=" + url.QueryEscape(subsetLabel+"=yes") + "&", n: sub, subset: true},
	}
	paths := e.listPaths()
	clients := make([]*http.Client, len(paths))
	for i, p := range paths {
		clients[i], _ = rest.HTTPClientFor(p.cfg)
	}
	m := newMeter(t, e)
	e.inConditions(t, ctx, r, "B1", func(c condition) {
		for _, l := range lists {
			listIn(t, ctx, e, r, paths, clients, m, l, c)
		}
	})
	profileCPU(t, ctx, e, "B1-list", func(ctx context.Context) {
		for ctx.Err() == nil {
			if _, err := listOnce(ctx, clients[pathCrproxy], paths[pathCrproxy], "resourceVersion=0", -1); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	})
}

// listIn measures one list of B1 in one condition of the target.
func listIn(t *testing.T, ctx context.Context, e *benchEnv, r *report, paths []benchPath, clients []*http.Client, m *meter, l listCase, c condition) {
	for _, rv := range readVersions(true) {
		var n []string
		if rv.notOlderThan {
			n = e.currentVersions(t, ctx, paths)
		}
		consistent := rv.name == `rv=""`
		times := make([][]time.Duration, len(paths))
		for round := range *flagListRounds + 1 {
			for i, p := range paths {
				d, err := listOnce(ctx, clients[i], p, l.query+rv.query(i, n), l.n)
				if err != nil {
					t.Fatal(err)
				}
				if round > 0 { // the first round warms caches and connections
					times[i] = append(times[i], d)
				}
			}
		}
		name := l.name + " " + rv.name
		for _, q := range []float64{50, 99} {
			f := unmeasured()
			for i := range paths {
				f[i] = ms(percentile(times[i], q))
			}
			rw := c.row("B1", name, fmt.Sprintf("p%g", q), "ms")
			if q == 50 {
				rw = listBar(rw, l, consistent, c, f)
			}
			r.add(rw, f)
		}
		if consistent {
			// Timed apart from the rounds above: the target's own lists
			// there would count as their cost, and reading /metrics
			// around each list would load the target while it is timed.
			var cost [numPaths]readCost
			for _, i := range []int{pathCrproxy, pathViaClient} {
				var err error
				u, ok := m.during(ctx, r, "B1", func() {
					for range *flagListRounds {
						if _, err = listOnce(ctx, clients[i], paths[i], l.query+rv.query(i, n), l.n); err != nil {
							return
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					cost[i].add(int64(*flagListRounds), u)
				}
			}
			if cost[pathCrproxy].target != nil {
				addCostRows(r, c.row("B1", name, "", ""), cost)
			}
		}
	}
}

// listBar sets the bar of a list's p50 row.
func listBar(rw row, l listCase, consistent bool, c condition, f figures) row {
	viaClient := func(limit float64) row {
		if rw.Met != nil {
			rw.Met = ptr(*rw.Met && f[pathViaClient] <= limit*f[pathTarget])
		}
		return rw
	}
	switch {
	case l.subset && consistent && c.busy:
		rw = barAtMost(rw, 1.2, f)
		rw.Bar = "straight ≤ 1.2x"
	case l.subset:
	case consistent && c.busy:
		rw = barAtMost(rw, 0.4, f)
		rw.Bar = "straight ≤ 0.4x"
	case consistent:
		rw = barAtMost(rw, 0.12, f)
		rw.Bar = "straight ≤ 0.12x, through client ≤ 0.5x"
		rw = viaClient(0.5)
	default:
		rw = barAtMost(rw, 0.1, f)
		rw.Bar = "straight ≤ 0.1x, through client ≤ 0.5x"
		rw = viaClient(0.5)
	}
	// Crproxy answers every list from its mirror: sending the same bytes
	// from memory is its floor.
	return floorOf(rw, f, pathReplay)
}

// listOnce lists the objects (all namespaces; query, without its "?",
// selects them and their resourceVersion) as raw bytes, checks that n
// came back (n < 0: any), and returns how long it took. It counts the
// objects as the body streams in and keeps none of it: the figure is the
// server's, not client-go's decoding nor the reader's buffers (reading 12
// MB into a growing slice cost this client more CPU than crproxy spent
// answering; objectCounter).
func listOnce(ctx context.Context, hc *http.Client, p benchPath, query string, n int) (time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.Host+"/apis/example.com/v1/myresources?"+query, nil)
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	var c objectCounter
	_, err = io.CopyBuffer(&c, resp.Body, make([]byte, 256<<10))
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	if got := c.objects(); resp.StatusCode != http.StatusOK || (n >= 0 && got != n) {
		return 0, fmt.Errorf("%s: ?%s: status %d, %d of %d objects", p.name, query, resp.StatusCode, got, n)
	}
	// Every list here runs with the target up: a Warning would mean a
	// consistent list served without its check (as B2 for GETs).
	if w := resp.Header.Get("Warning"); w != "" {
		return 0, fmt.Errorf("%s: ?%s: Warning %q", p.name, query, w)
	}
	return d, nil
}

// objectPattern is what objectCounter counts: one per object.
var objectPattern = []byte(`"kind":"MyResource"`)

// objectCounter counts the MyResources of a JSON list written to it in
// any pieces, and the bytes.
type objectCounter struct {
	n       int64
	found   int
	objTail []byte
}

// Write counts the patterns that end in p: those inside p, and those that
// begin in the bytes before it.
func (c *objectCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.found += countAcross(&c.objTail, p, objectPattern)
	return len(p), nil
}

// objects is the count of MyResources.
func (c *objectCounter) objects() int { return c.found }

// countAcross counts pat in p and across the boundary with the bytes
// before it, whose last len(pat)-1 *tail keeps. An occurrence across the
// boundary has its first byte in the tail and its last in p's first
// len(pat)-1 bytes: the joint of the two holds it, and nothing else,
// being shorter than two patterns.
func countAcross(tail *[]byte, p, pat []byte) int {
	keep := len(pat) - 1
	joint := append(append([]byte(nil), *tail...), p[:min(len(p), keep)]...)
	n := bytes.Count(joint, pat) + bytes.Count(p, pat)
	all := append(*tail, p[max(0, len(p)-keep):]...)
	*tail = append((*tail)[:0], all[max(0, len(all)-keep):]...)
	return n
}
