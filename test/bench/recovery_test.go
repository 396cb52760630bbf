package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// benchRecovery (B6) cuts crproxy off the target bench.outages times for
// bench.outage-length, changes an object at the target during each outage,
// and records, after the cut heals, when crproxy's next attempt got through
// (its /status leaves Unreachable) and when the mirror served the change.
// Bar: the change served within 1 s of that attempt.
func benchRecovery(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	if e.cut == nil { // B5 did not run: put the cut in place now
		e.cut = e.cutTarget(t, ctx, e.loaded+e.extra(t, ctx, e.loaded))
	}
	state := func() string {
		st, err := e.status(ctx)
		if err != nil || len(st.Targets) != 1 {
			return ""
		}
		return st.Targets[0].State
	}
	var healToAttempt, attemptToServed, healToServed []time.Duration
	for i := range *flagOutages {
		e.cut.Partition()
		cutAt := time.Now()
		for state() != "Unreachable" {
			if time.Since(cutAt) > 30*time.Second {
				t.Fatal("crproxy did not see the target unreachable within 30 s of the partition")
			}
			time.Sleep(10 * time.Millisecond)
		}
		value := fmt.Sprintf("outage-%d-%d", i, time.Now().UnixNano())
		if _, err := e.atTarget.Namespace("default").Patch(ctx, objectName(0), types.MergePatchType, fmt.Appendf(nil, `{"spec":{"name":%q}}`, value), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(cutAt.Add(*flagOutageLength)))
		e.cut.Heal()
		healed := time.Now()
		var attempt, served time.Time
		for served.IsZero() {
			if time.Since(healed) > time.Minute {
				t.Fatalf("outage %d: the change made during the outage was not served within a minute of the heal", i)
			}
			now := time.Now()
			if attempt.IsZero() && state() != "Unreachable" {
				attempt = now
			}
			if body, err := e.getProxy(ctx, "/apis/example.com/v1/namespaces/default/myresources/"+objectName(0)+"?resourceVersion=0"); err == nil && containsValue(body, value) {
				served = time.Now()
				if attempt.IsZero() {
					attempt = now
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		healToAttempt = append(healToAttempt, attempt.Sub(healed))
		attemptToServed = append(attemptToServed, served.Sub(attempt))
		healToServed = append(healToServed, served.Sub(healed))
		t.Logf("outage %d: heal → next attempt %s, → change served %s", i, attempt.Sub(healed).Round(time.Millisecond), served.Sub(healed).Round(time.Millisecond))
	}
	name := fmt.Sprintf("%d outages of %s, one change each", *flagOutages, *flagOutageLength)
	only := func(d time.Duration) figures { return targetAndCrproxy(math.NaN(), ms(d)) }
	for _, q := range []float64{50, 100} {
		metric := map[float64]string{50: "p50", 100: "max"}[q]
		rw := row{ID: "B6", Case: name, Metric: "next attempt to change served, " + metric, Unit: "ms"}
		if q == 100 {
			rw = barAbsolute(rw, "≤ 1 s", percentile(attemptToServed, q) <= time.Second)
		}
		r.add(rw, only(percentile(attemptToServed, q)))
		r.add(row{ID: "B6", Case: name, Metric: "heal to next attempt, " + metric, Unit: "ms"}, only(percentile(healToAttempt, q)))
		r.add(row{ID: "B6", Case: name, Metric: "heal to change served, " + metric, Unit: "ms"}, only(percentile(healToServed, q)))
	}
}

// containsValue reports whether the object's JSON holds the string value.
func containsValue(body []byte, value string) bool {
	quoted, _ := json.Marshal(value)
	return bytes.Contains(body, quoted)
}
