package soak

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/crproxytest/linearize"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

var (
	linearizabilityDuration = flag.Duration("soak.linearizability", 0,
		"run TestLinearizabilitySoak for this long (0: skip it; `make soak` runs it, `make test` runs test/e2e's short TestLinearizability instead)")
	linearizabilityGroups = flag.Int("soak.linearizability-groups", 3, "independent sets of objects (one namespace each) of TestLinearizabilitySoak; porcupine checks each apart")
	linearizabilityChurn  = flag.Float64("soak.linearizability-churn", 50, "writes per second to an unrelated ConfigMap at the target during TestLinearizabilitySoak")
	linearizabilityCheck  = flag.Duration("soak.linearizability-check-timeout", 5*time.Minute, "how long porcupine may take to check the history")
	linearizabilityRV     = flag.String("soak.linearizability-read-resource-version", "", `resourceVersion of the reads: "" (consistent) or "0" (a negative control, which should fail)`)
)

// TestLinearizabilitySoak is test/e2e's TestLinearizability for longer
// (soak.linearizability), with more objects (soak.linearizability-groups
// namespaces) and a target restart every soak.restart-interval (stopped
// and killed in turn), down 1–10 s each time: writers straight at the target and through crproxy (straight
// and through the client cluster), readers through crproxy, all recorded,
// and the history checked with porcupine at the end. Reads answered with
// crproxy's Warning while the target is down are stale by contract: left
// out, and counted.
func TestLinearizabilitySoak(t *testing.T) {
	if *linearizabilityDuration == 0 {
		t.Skip("-soak.linearizability=0: `make soak` runs it (test/e2e's TestLinearizability is the short version)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target := clustertest.NewAPIServer(t, "lin-target")
	client := clustertest.NewAPIServer(t, "lin-client")
	if err := crproxytest.InstallCRD(ctx, target, "myresource-crd.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := crproxytest.Apply(ctx, target, "target-rbac.yaml"); err != nil {
		t.Fatal(err)
	}
	var groups []linearize.Group
	for g := range *linearizabilityGroups {
		ns := fmt.Sprintf("lin-%d", g)
		for _, s := range []*localcluster.APIServer{target, client} {
			if out, err := s.Kubectl(ctx, "create", "namespace", ns); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
		groups = append(groups, linearize.Group{Namespace: ns, Prefix: "obj-", Keys: 3})
	}
	p := crproxytest.StartProxy(t, crproxytest.Options{Client: client, Config: crproxytest.Config("client", client, target)})

	atTarget, straight, viaClient, err := linearize.Endpoints(target, client, p, "client")
	if err != nil {
		t.Fatal(err)
	}
	churn := crproxytest.ChurnFor(t, ctx, target, *linearizabilityChurn)

	rec := linearize.NewRecorder(groups...)
	rec.ReadResourceVersion = *linearizabilityRV
	wl := linearize.MixedWorkload(rec, atTarget, straight, viaClient, 60*time.Millisecond)
	wl.Start(ctx)
	t.Logf("history time 0 is %s", rec.Began().Format("15:04:05.000000"))
	start := time.Now()
	restarts := 0
	for time.Since(start)+*restartInterval < *linearizabilityDuration {
		time.Sleep(*restartInterval)
		downtime := time.Second + rand.N(9*time.Second)
		// Every other restart is a crash: writes in flight get an
		// unknown outcome.
		if restarts%2 == 0 {
			target.Stop()
		} else {
			target.Kill()
		}
		rec.TargetGone()
		time.Sleep(downtime)
		rec.TargetStarting()
		if err := target.Start(ctx); err != nil {
			wl.Stop()
			t.Fatal(err)
		}
		restarts++
		t.Logf("restart %d: the target was down %s; %d operations so far", restarts, downtime.Round(time.Millisecond), rec.Len())
	}
	time.Sleep(max(0, *linearizabilityDuration-time.Since(start)))
	wl.Stop()
	t.Logf("%s", churn.Stop())
	stats := rec.Stats()
	t.Logf("history of %d operations in %s, %d target restarts; %s", rec.Len(), time.Since(start).Round(time.Second), restarts, stats)

	// Beside the clusters' logs, kept when the test fails.
	dir := filepath.Join(clustertest.Environment(t).Dir, "artifacts", t.Name())
	if stats.Reads == 0 || stats.WritesOK == 0 {
		t.Fatalf("nothing to check: %s", stats)
	}
	// Written before the check, so a check that runs out of time or memory
	// leaves it to study.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := linearize.WriteHistory(filepath.Join(dir, "history.jsonl"), rec.Operations()); err != nil {
		t.Fatal(err)
	}
	linearize.RequireLinearizable(t, rec, *linearizabilityCheck, dir)
}
