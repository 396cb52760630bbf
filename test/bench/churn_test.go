package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// The churner's object at the target: a ConfigMap in a namespace of its
// own, which crproxy does not mirror.
const (
	churnNamespace = "bench-churn"
	churnName      = "churn"
	// churnInFlight bounds the churner's concurrent writes: a slow write
	// (the target busy with a benchmark's load) does not stop the next
	// tick's, up to this many.
	churnInFlight = 16
)

var (
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// condition is the state of the target while a benchmark measures: quiet,
// or busy with the churner's writes.
type condition struct {
	busy bool
	// suffix ends the case name of the condition's rows ("" when quiet).
	suffix string
}

// row is a row of this condition: its case is name and the condition's
// suffix.
func (c condition) row(id, name, metric, unit string) row {
	return row{ID: id, Case: name + c.suffix, Metric: metric, Unit: unit, Condition: c.name(), base: name}
}

// name is "quiet" or "busy".
func (c condition) name() string {
	if c.busy {
		return "busy"
	}
	return "quiet"
}

// conditions are the conditions B1, B2 and B4 measure in: quiet, and with
// bench.churn > 0 busy.
func conditions() []condition {
	c := []condition{{}}
	if *flagChurn > 0 {
		c = append(c, condition{busy: true, suffix: fmt.Sprintf(", busy target (%g writes/s)", *flagChurn)})
	}
	return c
}

// inConditions runs measure once per condition, quiet first; while a busy
// one runs, the churner writes at the target, and its achieved rate and
// errors go into the report's notes.
func (e *benchEnv) inConditions(t *testing.T, ctx context.Context, r *report, id string, measure func(c condition)) {
	for _, c := range conditions() {
		if !c.busy {
			measure(c)
			continue
		}
		func() {
			ch := startChurn(ctx, e.churnObject(t, ctx), *flagChurn)
			// Deferred, so a benchmark that fails still stops the churner
			// and reports what it did.
			defer func() { r.note("%s busy: %s", id, ch.stop()) }()
			measure(c)
		}()
	}
}

// churnObject creates the churner's namespace and ConfigMap at the target
// (once) and returns the client that writes it.
func (e *benchEnv) churnObject(t *testing.T, ctx context.Context) dynamic.ResourceInterface {
	cfg := e.target.RESTConfig()
	// No client-side rate limit: the ticker sets the rate.
	cfg.QPS, cfg.Burst = -1, 0
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm := dc.Resource(configMapsGVR).Namespace(churnNamespace)
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": churnNamespace}}}
	if _, err := dc.Resource(namespacesGVR).Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": churnName}, "data": map[string]any{"n": "0"}}}
	if _, err := cm.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return cm
}

// churner writes one ConfigMap at the target at a steady rate (a ticker,
// each write with a new data value, so each moves the target's
// resourceVersion) until stopped. A failed write is counted, never fatal:
// the churner is the background, not the benchmark.
type churner struct {
	rate   float64
	cm     dynamic.ResourceInterface
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time

	seq, writes, failed, skipped atomic.Int64
	mu                           sync.Mutex
	firstErr                     error
	perSecond                    map[int64]int // completed writes per second since start
}

// startChurn starts writing cm rate times a second.
func startChurn(ctx context.Context, cm dynamic.ResourceInterface, rate float64) *churner {
	c := &churner{rate: rate, cm: cm, done: make(chan struct{}), start: time.Now(), perSecond: map[int64]int{}}
	ctx, c.cancel = context.WithCancel(ctx)
	go c.run(ctx)
	return c
}

func (c *churner) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
	defer tick.Stop()
	inFlight := make(chan struct{}, churnInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case inFlight <- struct{}{}:
		default:
			c.skipped.Add(1) // churnInFlight writes still running
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inFlight }()
			c.write(ctx)
		}()
	}
}

// write changes the ConfigMap's data once.
func (c *churner) write(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	patch := fmt.Appendf(nil, `{"data":{"n":%q}}`, fmt.Sprint(c.seq.Add(1)))
	_, err := c.cm.Patch(wctx, churnName, types.MergePatchType, patch, metav1.PatchOptions{})
	if ctx.Err() != nil {
		return // stopping: a write cut short is neither done nor failed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed.Add(1)
		if c.firstErr == nil {
			c.firstErr = err
		}
		return
	}
	c.writes.Add(1)
	c.perSecond[int64(time.Since(c.start)/time.Second)]++
}

// stop stops the churner, waits for its writes in flight, and describes
// what it did: the achieved rate (with a warning below 90% of the asked
// one), the slowest full second, and the failed and skipped writes.
func (c *churner) stop() string {
	c.cancel()
	<-c.done
	elapsed := time.Since(c.start)
	c.mu.Lock()
	defer c.mu.Unlock()
	achieved := float64(c.writes.Load()) / elapsed.Seconds()
	s := fmt.Sprintf("the churner wrote %s/%s %d times in %s, %.1f/s of the %g/s asked",
		churnNamespace, churnName, c.writes.Load(), elapsed.Round(100*time.Millisecond), achieved, c.rate)
	// The slowest second, of the full seconds only (the last is partial).
	if full := int64(elapsed / time.Second); full > 0 {
		lowest := -1
		for sec := range full {
			if n := c.perSecond[sec]; lowest < 0 || n < lowest {
				lowest = n
			}
		}
		s += fmt.Sprintf(" (slowest second: %d)", lowest)
	}
	s += fmt.Sprintf("; %d failed", c.failed.Load())
	if c.firstErr != nil {
		s += fmt.Sprintf(" (first: %v)", c.firstErr)
	}
	if n := c.skipped.Load(); n > 0 {
		s += fmt.Sprintf(", %d ticks skipped with %d writes in flight", n, churnInFlight)
	}
	if achieved < 0.9*c.rate {
		s += fmt.Sprintf(". **Warning**: below 90%% of the asked rate, so these busy figures are for a quieter target than %g writes/s", c.rate)
	}
	return s + "."
}
