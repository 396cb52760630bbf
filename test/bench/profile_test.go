package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// profileCPU, with bench.profile-dir, records crproxy's CPU profile
// (pprof, from its --profiling endpoint) while load runs for
// bench.profile-time, into <dir>/<name>.cpu.pprof. The profile is taken
// after the timed runs, so the figures do not pay for it. load must return
// when its context ends.
func profileCPU(t *testing.T, ctx context.Context, e *benchEnv, name string, load func(context.Context)) {
	if *flagProfileDir == "" {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		load(ctx)
	}()
	body, err := e.getProxy(context.Background(), fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(flagProfileTime.Seconds())))
	cancel()
	<-done
	writeProfile(t, name+".cpu.pprof", body, err)
}

// profileHeap, with bench.profile-dir, writes crproxy's heap profile (live
// objects after a collection) into <dir>/<name>.heap.pprof.
func profileHeap(t *testing.T, ctx context.Context, e *benchEnv, name string) {
	if *flagProfileDir == "" {
		return
	}
	body, err := e.getProxy(ctx, "/debug/pprof/heap?gc=1")
	writeProfile(t, name+".heap.pprof", body, err)
}

func writeProfile(t *testing.T, file string, body []byte, err error) {
	if err != nil {
		t.Errorf("profile %s: %v", file, err)
		return
	}
	path := filepath.Join(*flagProfileDir, file)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("wrote %s (go tool pprof -top %s)", path, path)
}
