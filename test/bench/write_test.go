package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// TestWriteLatencyRatio runs create, update, patch and delete one at a
// time on each path in turn (the target straight, crproxy straight, and
// through the client kube-apiserver) and prints each verb's median latency
// and its ratio to the target's. Through crproxy a write returns only once
// the mirror holds it (read-your-writes), which the figures include.
func TestWriteLatencyRatio(t *testing.T) {
	if os.Getenv("CRPROXY_BENCH") == "" {
		t.Skip("set CRPROXY_BENCH=1 to run the benchmarks")
	}
	const rounds = 200
	ctx := context.Background()
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	paths := startProxy(t, ctx, client, target)

	verbs := []string{"create", "update", "patch", "delete"}
	times := map[string][][]time.Duration{}
	for _, v := range verbs {
		times[v] = make([][]time.Duration, len(paths))
	}
	clients := make([]dynamic.ResourceInterface, len(paths))
	for i, p := range paths {
		dc, err := dynamic.NewForConfig(p.cfg)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = dc.Resource(myResources).Namespace("default")
	}
	timed := func(verb string, path int, round int, op func() error) {
		start := time.Now()
		if err := op(); err != nil {
			t.Fatalf("%s through %s: %v", verb, paths[path].name, err)
		}
		if round > 0 { // the first round warms connections and caches
			times[verb][path] = append(times[verb][path], time.Since(start))
		}
	}
	for round := range rounds + 1 {
		for i, rc := range clients {
			name := fmt.Sprintf("w-%d-%d", i, round)
			// The owner labels make the straight-to-target object look like
			// crproxy's; crproxy stamps them itself.
			u := ownedMyResource(name, "created")
			var obj *unstructured.Unstructured
			timed("create", i, round, func() (err error) {
				obj, err = rc.Create(ctx, u, metav1.CreateOptions{})
				return err
			})
			_ = unstructured.SetNestedField(obj.Object, "updated", "spec", "name")
			timed("update", i, round, func() error { _, err := rc.Update(ctx, obj, metav1.UpdateOptions{}); return err })
			timed("patch", i, round, func() error {
				_, err := rc.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"priority":"high"}}`), metav1.PatchOptions{})
				return err
			})
			timed("delete", i, round, func() error { return rc.Delete(ctx, name, metav1.DeleteOptions{}) })
		}
	}
	for _, v := range verbs {
		base := median(times[v][0])
		for i, p := range paths {
			m := median(times[v][i])
			t.Logf("%-6s median over %d  %-30s %8s  ratio to target %.2f", v, rounds, p.name, m.Round(10*time.Microsecond), float64(m)/float64(base))
		}
	}
}
