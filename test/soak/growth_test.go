package soak

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// sample is crproxy's footprint after a cycle.
type sample struct {
	cycle, pid      int
	rssKiB, threads int
}

// sampleOf reads a process's resident memory and thread count from /proc.
func sampleOf(pid, cycle int) sample {
	s := sample{cycle: cycle, pid: pid}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s
	}
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &s.rssKiB)
		case strings.HasPrefix(line, "Threads:"):
			fmt.Sscanf(strings.TrimPrefix(line, "Threads:"), "%d", &s.threads)
		}
	}
	return s
}

// checkGrowth fails when crproxy grows across the cycles of one process
// lifetime (a kill -9 starts a new one): from its second sample (the first
// is still warming up) to its last, RSS may grow by at most 64 MiB and the
// thread count by at most 20.
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
	}
}
