package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// TestWatchFanOut (B3) opens 100 and then 1,000 watches on crproxy (a
// separate process, so its memory is its own), creates one object at the
// target, and prints how long until every watcher had the event (p50, p99,
// max) and crproxy's resident memory per open watch.
func TestWatchFanOut(t *testing.T) {
	if os.Getenv("CRPROXY_BENCH") == "" {
		t.Skip("set CRPROXY_BENCH=1 to run the benchmarks")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	binDir, err := localcluster.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	configPath := writeProxyConfig(t, dir, client, target)
	proxy, err := localcluster.NewCrproxy(localcluster.CrproxyOptions{BinDir: binDir, Dir: dir, ConfigPath: configPath, ServiceName: "crproxy-bench"})
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	direct := directConfig(client, fmt.Sprintf("127.0.0.1:%d", proxy.Port))
	atTarget, _ := dynamic.NewForConfig(target.RESTConfig())

	var streams []*watchStream
	for _, total := range []int{100, 1000} {
		before, added := rss(t, proxy.PID()), total-len(streams)
		for len(streams) < total {
			streams = append(streams, openWatch(t, ctx, direct))
		}
		time.Sleep(time.Second) // let the server settle its goroutines
		perWatch := float64(rss(t, proxy.PID())-before) * 1024 / float64(added)
		name := fmt.Sprintf("fanout-%d", total)
		u := ownedMyResource(name, name)
		start := time.Now()
		if _, err := atTarget.Resource(myResources).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var delays []time.Duration
		for _, s := range streams {
			at, err := s.waitFor(name, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			delays = append(delays, at.Sub(start))
		}
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		t.Logf("WATCH %4d watchers: all notified p50 %s p99 %s max %s after the create at the target; crproxy RSS %.1f KiB per watch",
			total, delays[len(delays)/2].Round(10*time.Microsecond), delays[len(delays)*99/100].Round(10*time.Microsecond), delays[len(delays)-1].Round(10*time.Microsecond), perWatch/1024)
	}
}

// watchStream is one open watch and the times its ADDED events arrived.
type watchStream struct {
	mu   sync.Mutex
	seen map[string]time.Time
	cond *sync.Cond
}

// openWatch opens a raw watch (resourceVersion "0": current state, then
// changes) and records when each ADDED object arrives.
func openWatch(t *testing.T, ctx context.Context, cfg *rest.Config) *watchStream {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/apis/example.com/v1/namespaces/default/myresources?watch=true&resourceVersion=0", nil)
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %v %v", err, resp)
	}
	s := &watchStream{seen: map[string]time.Time{}}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, `"name":"`); i >= 0 && strings.HasPrefix(line, `{"type":"ADDED"`) {
				name := line[i+8:]
				name = name[:strings.IndexByte(name, '"')]
				s.mu.Lock()
				s.seen[name] = time.Now()
				s.cond.Broadcast()
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// waitFor returns when name's ADDED event arrived.
func (s *watchStream) waitFor(name string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	go func() { time.Sleep(timeout); s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() }()
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
