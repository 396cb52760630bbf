package bench

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	flagObjects      = flag.Int("bench.objects", 10000, "objects of about 1 KiB loaded for B1 and B2 (1000, 10000, 50000, ...)")
	flagOnly         = flag.String("bench.only", "", "comma-separated benchmarks to run (B1,...,B8); empty: all")
	flagJSON         = flag.String("bench.json", "", "also write the results as JSON to this file (for hack/tools/benchplot)")
	flagProfileDir   = flag.String("bench.profile-dir", "", "write crproxy's CPU and heap profiles of each benchmark into this folder")
	flagProfileTime  = flag.Duration("bench.profile-time", 10*time.Second, "how long each CPU profile runs its benchmark's load")
	flagListRounds   = flag.Int("bench.list-rounds", 20, "B1: timed lists per path and resourceVersion")
	flagGetWindow    = flag.Duration("bench.get-window", 4*time.Second, "B2: load time per path and client count (split in two halves, alternating the paths)")
	flagWatchers     = flag.String("bench.watchers", "100,1000", "B3: numbers of concurrent watchers")
	flagWriteRounds  = flag.Int("bench.write-rounds", 200, "B4: rounds of create, update, patch and delete per path")
	flagColdObjects  = flag.Int("bench.coldstart-objects", 100000, "B5: objects in the bbolt file crproxy restarts over")
	flagOutages      = flag.Int("bench.outages", 5, "B6: outages measured")
	flagCRDRounds    = flag.Int("bench.crd-rounds", 20, "B8: rounds of a CRD created, changed and deleted at the target")
	flagKeepLog      = flag.String("bench.keep-log", "", "copy crproxy's log to this file at the end")
	flagOutageLength = flag.Duration("bench.outage-length", 5*time.Second, "B6: how long each outage lasts")
	flagChurn        = flag.Float64("bench.churn", 50, "B1, B2, B4: writes per second to an unrelated ConfigMap at the target while the busy runs measure (0: quiet runs only)")
)

// TestBench runs the benchmarks (B1–B8 of docs/benchmarks.md) on one set
// of clusters and one crproxy, and prints one table. It runs only when
// CRPROXY_BENCH is set: it takes minutes and reports figures instead of
// asserting them (a benchmark fails only when an operation fails).
func TestBench(t *testing.T) {
	if os.Getenv("CRPROXY_BENCH") == "" {
		t.Skip("set CRPROXY_BENCH=1 to run the benchmarks (make bench)")
	}
	ctx := context.Background()
	e := newBenchEnv(t, ctx)
	if *flagKeepLog != "" {
		t.Cleanup(func() {
			data, err := os.ReadFile(e.proxy.LogPath)
			if err == nil {
				err = os.WriteFile(*flagKeepLog, data, 0o644)
			}
			if err != nil {
				t.Errorf("bench.keep-log: %v", err)
			}
		})
	}
	r := &report{Started: time.Now(), Objects: *flagObjects, Machine: e.machineOf(ctx)}
	defer func() {
		// Printed even when a benchmark failed: what was measured stays.
		var b strings.Builder
		r.printMarkdown(&b)
		t.Log(b.String())
		if *flagJSON != "" {
			if err := r.writeJSON(*flagJSON); err != nil {
				t.Error(err)
			}
		}
	}()
	if *flagProfileDir != "" {
		if err := os.MkdirAll(*flagProfileDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.load(t, ctx, *flagObjects)
	r.ObjectBytes = meanObjectBytes(t, ctx, e)

	benchmarks := []struct {
		id  string
		run func(*testing.T, context.Context, *benchEnv, *report)
	}{
		{"B1", benchList},
		{"B2", benchGet},
		{"B3", benchWatch},
		{"B4", benchWrite},
		{"B8", benchPropagation},
		{"B7", benchTenants},
		// B5 grows the data to bench.coldstart-objects and leaves the
		// target behind a partition that B6 heals: they come last.
		{"B5", benchColdStart},
		{"B6", benchRecovery},
	}
	only := strings.Split(*flagOnly, ",")
	for _, b := range benchmarks {
		if *flagOnly != "" && !slices.Contains(only, b.id) {
			continue
		}
		if !t.Run(b.id, func(t *testing.T) { b.run(t, ctx, e, r) }) {
			return
		}
	}
	footprint(t, e, r)
}

// meanObjectBytes is the mean size of an object's JSON as crproxy serves
// it.
func meanObjectBytes(t *testing.T, ctx context.Context, e *benchEnv) int {
	body, err := e.getProxy(ctx, "/apis/example.com/v1/namespaces/default/myresources?resourceVersion=0&limit=100")
	if err != nil {
		t.Fatal(err)
	}
	return len(body) / 100
}

// footprint records the resident memory of crproxy and of the target
// kube-apiserver at the end of the run.
func footprint(t *testing.T, e *benchEnv, r *report) {
	if e.proxy.Process().PID() == 0 || !e.target.Running() {
		return
	}
	f := targetAndCrproxy(float64(rssKiB(t, e.target.PID()))/1024, float64(rssKiB(t, e.proxy.Process().PID()))/1024)
	r.add(row{ID: "M", Case: "resident memory at the end of the run", Metric: "RSS", Unit: "MiB"}, f)
	r.note("M: the client kube-apiserver ends at %d MiB and the shared etcd at %d MiB.", rssKiB(t, e.client.PID())>>10, rssKiB(t, e.env.Etcd.PID())>>10)
}
