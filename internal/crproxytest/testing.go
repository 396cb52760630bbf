package crproxytest

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// StartProxy starts a crproxy for a test: o.Dir defaults to a new
// temporary folder, a failing test prints the tail of crproxy's log, and
// crproxy is stopped when the test ends (a stop that fails fails the test).
func StartProxy(t testing.TB, o Options) *Proxy {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	clustertest.ReportOnFailure(t, "crproxy", p.LogPath)
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("crproxy ended with %v", err)
		}
	})
	p.Restart(t)
	return p
}

// FileLogger logs to path, which outlives the test's goroutines (a
// testing.T logger would not), and prints the log's tail, as name, if t
// fails.
func FileLogger(t testing.TB, name, path string) *zap.Logger {
	t.Helper()
	log, err := fileLogger(path)
	if err != nil {
		t.Fatal(err)
	}
	clustertest.ReportOnFailure(t, name, path)
	return log
}

// Restart starts crproxy again (after Stop or Kill) and waits as Start
// does, within two minutes; it fails t on error.
func (p *Proxy) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// Eventually retries check until it returns "" and fails t with check's
// last answer when within has passed or ctx has ended.
func Eventually(t testing.TB, ctx context.Context, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		problem := check()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("after %s: %s", within, problem)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
