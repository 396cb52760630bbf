package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// fanoutNamespace holds the watch benchmark's objects, so the watches'
// initial state is small whatever bench.objects is.
const fanoutNamespace = "fanout"

// fanoutEvents is how many single writes each watcher count is timed on.
const fanoutEvents = 20

// benchWatch (B3) opens bench.watchers concurrent watches (each on its own
// connection, as informers of separate processes have) on crproxy straight
// and then on the target, creates objects at the target one at a time, and
// records how long until every watcher had each event (p50 and p99 over
// the writes) and the server's memory per open watch: its live heap and
// stacks after a collection (from /debug/pprof/heap), and its RSS growth.
// Bar: 1,000 watchers all notified within 50 ms p99, under 16 KiB per
// watcher.
func benchWatch(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	for _, cluster := range []*localcluster.APIServer{e.target, e.client} {
		if _, err := cluster.Kubectl(ctx, "create", "namespace", fanoutNamespace); err != nil {
			t.Fatal(err)
		}
	}
	var counts []int
	for _, s := range strings.Split(*flagWatchers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			t.Fatalf("bench.watchers: %q is not a positive number", s)
		}
		counts = append(counts, n)
	}
	type result struct{ p50, p99, rssKiB, liveKiB float64 }
	results := map[int]*[numPaths]result{}
	for _, n := range counts {
		results[n] = &[numPaths]result{}
	}
	sides := []struct {
		path int
		pid  func() int
	}{{pathCrproxy, e.proxy.Process().PID}, {pathTarget, e.target.PID}}
	for _, side := range sides {
		wctx, closeWatches := context.WithCancel(ctx)
		var streams []*watchStream
		for _, total := range counts {
			cfg := e.paths[side.path].cfg
			liveBefore, err := liveBytes(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			before, added := rssKiB(t, side.pid()), total-len(streams)
			for len(streams) < total {
				s, err := openWatch(wctx, e.paths[side.path].cfg)
				if err != nil {
					t.Fatalf("watch %d on %s: %v", len(streams)+1, e.paths[side.path].name, err)
				}
				streams = append(streams, s)
			}
			time.Sleep(2 * time.Second) // let the server settle its goroutines and buffers
			kib := float64(rssKiB(t, side.pid())-before) / float64(added)
			liveAfter, err := liveBytes(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			liveKiB := float64(liveAfter-liveBefore) / 1024 / float64(added)
			var allNotified []time.Duration
			for i := range fanoutEvents {
				name := fmt.Sprintf("fanout-%s-%d-%d", strings.Fields(e.paths[side.path].name)[0], total, i)
				u := ownedMyResource(name, name)
				u.SetNamespace(fanoutNamespace)
				start := time.Now()
				if _, err := e.atTarget.Namespace(fanoutNamespace).Create(ctx, u, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				var last time.Time
				for _, s := range streams {
					at, err := s.waitFor(name, 30*time.Second)
					if err != nil {
						t.Fatalf("%s: %v", e.paths[side.path].name, err)
					}
					if at.After(last) {
						last = at
					}
				}
				allNotified = append(allNotified, last.Sub(start))
			}
			results[total][side.path] = result{ms(percentile(allNotified, 50)), ms(percentile(allNotified, 99)), kib, liveKiB}
			if side.path == pathCrproxy && total == counts[len(counts)-1] {
				profileHeap(t, ctx, e, fmt.Sprintf("B3-watch-%d", total))
			}
		}
		closeWatches()
		time.Sleep(2 * time.Second) // the server closes its side
	}
	for _, n := range counts {
		res := results[n]
		name := fmt.Sprintf("%d watchers, %d writes", n, fanoutEvents)
		sides := func(f func(result) float64) figures {
			return targetAndCrproxy(f(res[pathTarget]), f(res[pathCrproxy]))
		}
		r.add(row{ID: "B3", Case: name, Metric: "all notified p50", Unit: "ms"}, sides(func(x result) float64 { return x.p50 }))
		p99 := sides(func(x result) float64 { return x.p99 })
		live := sides(func(x result) float64 { return x.liveKiB })
		p99Row, liveRow := row{ID: "B3", Case: name, Metric: "all notified p99", Unit: "ms"}, row{ID: "B3", Case: name, Metric: "live heap + stacks per watcher", Unit: "KiB"}
		if n == 1000 {
			p99Row = barAbsolute(p99Row, "≤ 50 ms", p99[pathCrproxy] <= 50)
			liveRow = barAbsolute(liveRow, "≤ 16 KiB", live[pathCrproxy] <= 16)
		}
		r.add(p99Row, p99)
		r.add(liveRow, live)
		// RSS deltas are what the OS sees, but a process reuses memory it
		// freed before, so they understate (even below zero) as often as
		// not; the live figure above is the per-watch cost.
		r.add(row{ID: "B3", Case: name, Metric: "RSS growth per watcher", Unit: "KiB"}, sides(func(x result) float64 { return x.rssKiB }))
	}
}

// watchStream is one open watch and the times its ADDED events arrived.
type watchStream struct {
	mu   sync.Mutex
	seen map[string]time.Time
	cond *sync.Cond
}

// openWatch opens a raw watch of fanoutNamespace (resourceVersion "0":
// current state, then changes) on a connection of its own and records when
// each ADDED object arrives, until ctx ends.
func openWatch(ctx context.Context, cfg *rest.Config) (*watchStream, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/apis/example.com/v1/namespaces/"+fanoutNamespace+"/myresources?watch=true&resourceVersion=0", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	s := &watchStream{seen: map[string]time.Time{}}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		defer hc.CloseIdleConnections()
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			now := time.Now()
			if !strings.HasPrefix(string(line[:min(len(line), 16)]), `{"type":"ADDED"`) {
				continue
			}
			i := strings.Index(string(line), `"name":"`)
			if i < 0 {
				continue
			}
			name := string(line[i+8:])
			name = name[:strings.IndexByte(name, '"')]
			s.mu.Lock()
			s.seen[name] = now
			s.cond.Broadcast()
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// waitFor returns when name's ADDED event arrived.
func (s *watchStream) waitFor(name string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if at, ok := s.seen[name]; ok {
			return at, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no ADDED %s within %s", name, timeout)
		}
		s.cond.Wait()
	}
}
