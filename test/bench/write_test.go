package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/crproxy/crproxy/internal/crproxytest"
)

// writeVerbs are B4's verbs, in the order each round runs them.
var writeVerbs = []string{"create", "update", "patch", "delete"}

// benchWrite (B4) runs create, update, merge patch and delete of one object
// one at a time, on each path in turn, bench.write-rounds times, and
// records p50 and p99 per verb, with the target quiet and then
// (bench.churn) busy. Whatever crproxy waits for before it answers a write
// is in its figures. Bar: every verb's median through crproxy straight
// within 1.1x of the target's, quiet and busy.
func benchWrite(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	clients := make([]dynamic.ResourceInterface, len(e.paths))
	for i, p := range e.paths {
		dc, err := dynamic.NewForConfig(p.cfg)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = dc.Resource(crproxytest.MyResources).Namespace("default")
	}
	m := newMeter(t, e)
	e.inConditions(t, ctx, r, "B4", func(c condition) {
		writeIn(t, ctx, e, r, clients, c)
		writeCost(t, ctx, r, m, clients[pathCrproxy], c)
	})
	profileCPU(t, ctx, e, "B4-write", func(ctx context.Context) {
		for n := 0; ctx.Err() == nil; n++ {
			if _, err := writeRound(ctx, clients[pathCrproxy], fmt.Sprintf("w-profile-%d", n)); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	})
}

// writeIn measures B4 in one condition of the target.
func writeIn(t *testing.T, ctx context.Context, e *benchEnv, r *report, clients []dynamic.ResourceInterface, c condition) {
	prefix := "w"
	if c.busy {
		prefix = "wb"
	}
	times := map[string][][]time.Duration{}
	for _, v := range writeVerbs {
		times[v] = make([][]time.Duration, len(e.paths))
	}
	for round := range *flagWriteRounds + 1 {
		for i, rc := range clients {
			d, err := writeRound(ctx, rc, fmt.Sprintf("%s-%d-%d", prefix, i, round))
			if err != nil {
				t.Fatalf("%s: %v", e.paths[i].name, err)
			}
			if round > 0 { // the first round warms connections and caches
				for j, v := range writeVerbs {
					times[v][i] = append(times[v][i], d[j])
				}
			}
		}
	}
	for _, v := range writeVerbs {
		name := fmt.Sprintf("%s, %d sequential", v, *flagWriteRounds)
		for _, q := range []float64{50, 99} {
			f := unmeasured()
			for i := range e.paths {
				f[i] = ms(percentile(times[v][i], q))
			}
			rw := c.row("B4", name, fmt.Sprintf("p%g", q), "ms")
			if q == 50 {
				rw = floorOf(barAtMost(rw, 1.1, f), f, pathPlainHop)
				rw.Bar = "straight ≤ 1.1x"
			}
			r.add(rw, f)
		}
	}
}

// writeCostRounds is how many rounds through crproxy straight writeCost
// meters.
const writeCostRounds = 50

// writeCost runs writeCostRounds more rounds through crproxy straight, apart
// from the timed ones (reading /metrics would load the servers while they
// are timed), and notes what one round cost: the target's requests (the
// round's four writes among them), the client cluster's
// SubjectAccessReviews and crproxy's handler time per write.
func writeCost(t *testing.T, ctx context.Context, r *report, m *meter, rc dynamic.ResourceInterface, c condition) {
	prefix := "wc"
	if c.busy {
		prefix = "wcb"
	}
	var err error
	u, ok := m.during(ctx, r, "B4", func() {
		for n := 0; n < writeCostRounds && err == nil; n++ {
			_, err = writeRound(ctx, rc, fmt.Sprintf("%s-%d", prefix, n))
		}
	})
	if err != nil {
		t.Fatalf("crproxy straight: %v", err)
	}
	if !ok {
		return
	}
	per := func(v float64) string { return fmt.Sprintf("%.2f", v/writeCostRounds) }
	r.note("B4 cost, %s: one round through crproxy straight (create, update, patch, delete) made the target serve %s requests (%s) and the client cluster %s SubjectAccessReviews; crproxy's handler took %.2f ms per write.",
		c.name(), per(u.target.total()), u.target.format(per), per(u.client[subjectAccessReviews]), 1000*u.proxy.seconds/max(u.proxy.requests, 1))
}

// writeRound creates, updates, patches and deletes the object name and
// returns each verb's latency, in writeVerbs order.
func writeRound(ctx context.Context, rc dynamic.ResourceInterface, name string) ([]time.Duration, error) {
	var d []time.Duration
	timed := func(verb string, op func() error) error {
		start := time.Now()
		if err := op(); err != nil {
			return fmt.Errorf("%s %s: %w", verb, name, err)
		}
		d = append(d, time.Since(start))
		return nil
	}
	// The owner labels make the straight-to-target object look like
	// crproxy's; crproxy stamps them itself.
	var obj *unstructured.Unstructured
	if err := timed("create", func() (err error) {
		obj, err = rc.Create(ctx, ownedMyResource(name, "created"), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	_ = unstructured.SetNestedField(obj.Object, "updated", "spec", "name")
	if err := timed("update", func() error { _, err := rc.Update(ctx, obj, metav1.UpdateOptions{}); return err }); err != nil {
		return nil, err
	}
	if err := timed("patch", func() error {
		_, err := rc.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"priority":"high"}}`), metav1.PatchOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if err := timed("delete", func() error { return rc.Delete(ctx, name, metav1.DeleteOptions{}) }); err != nil {
		return nil, err
	}
	return d, nil
}
