package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// TestFootprint prints the resident memory of one etcd and three idle
// kube-apiservers from the harness.
func TestFootprint(t *testing.T) {
	if os.Getenv("CRPROXY_BENCH") == "" {
		t.Skip("set CRPROXY_BENCH=1 to run the benchmarks")
	}
	env := clustertest.Environment(t)
	total := 0
	for i := range 3 {
		s := clustertest.NewAPIServer(t, fmt.Sprintf("footprint-%d", i))
		kb := rss(t, s.PID())
		total += kb
		t.Logf("kube-apiserver  %6d MiB", kb>>10)
	}
	etcd := rss(t, env.Etcd.PID())
	t.Logf("etcd            %6d MiB", etcd>>10)
	t.Logf("total           %6d MiB", (total+etcd)>>10)
}

// rss is a process's resident set in KiB, from /proc.
func rss(t *testing.T, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
