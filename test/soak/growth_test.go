package soak

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// sample is crproxy's footprint after a cycle.
type sample struct {
	cycle, pid      int
	rssKiB, threads int
	// goroutines is go_goroutines from crproxy's /metrics (-1: unknown).
	goroutines int
}

// goroutinesOf reads go_goroutines from crproxy's /metrics, as the client
// cluster's admin (crproxy accepts the client cluster's certificates).
func goroutinesOf(ctx context.Context, cfg *rest.Config, port int) int {
	cfg = rest.CopyConfig(cfg)
	cfg.Host = fmt.Sprintf("https://127.0.0.1:%d", port)
	cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile, cfg.TLSClientConfig.Insecure = nil, "", true
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return -1
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/metrics", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// sampleOf reads a process's resident memory and thread count from /proc.
func sampleOf(pid, cycle, goroutines int) sample {
	st, _ := localcluster.ReadProcStatus(pid)
	return sample{cycle: cycle, pid: pid, goroutines: goroutines, rssKiB: st.RSSKiB, threads: st.Threads}
}

// checkGrowth fails when crproxy grows across the cycles of one process
// lifetime (a kill -9 starts a new one): from its second sample (the first
// is still warming up) to its last, RSS may grow by at most 64 MiB, the
// thread count by at most 20 and the goroutines by at most 50 (the
// watchers and readers are the same throughout; only leaks add more).
func checkGrowth(t *testing.T, samples []sample) {
	t.Helper()
	byPID := map[int][]sample{}
	for _, s := range samples {
		byPID[s.pid] = append(byPID[s.pid], s)
	}
	for pid, ss := range byPID {
		if len(ss) < 3 {
			continue
		}
		first, last := ss[1], ss[len(ss)-1]
		if grew := last.rssKiB - first.rssKiB; grew > 64<<10 {
			t.Errorf("crproxy (pid %d) grew by %d MiB of RSS from cycle %d to cycle %d", pid, grew>>10, first.cycle, last.cycle)
		}
		if grew := last.threads - first.threads; grew > 20 {
			t.Errorf("crproxy (pid %d) grew by %d threads from cycle %d to cycle %d", pid, grew, first.cycle, last.cycle)
		}
		if first.goroutines > 0 && last.goroutines > 0 && last.goroutines-first.goroutines > 50 {
			t.Errorf("crproxy (pid %d) grew by %d goroutines from cycle %d to cycle %d", pid, last.goroutines-first.goroutines, first.cycle, last.cycle)
		}
	}
}
