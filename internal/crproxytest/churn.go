package crproxytest

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

	"github.com/crproxy/crproxy/internal/localcluster"
)

// The churner's object: a ConfigMap in a namespace of its own, which
// crproxy does not mirror.
const (
	ChurnNamespace = "crproxytest-churn"
	churnName      = "churn"
	// churnInFlight bounds the churner's concurrent writes: a slow write
	// does not stop the next tick's, up to this many.
	churnInFlight = 16
)

// Churn keeps a target busy: it writes one unrelated ConfigMap at a steady
// rate, so the target's resourceVersion moves all the time, as a real
// cluster's leases and events move it, while the mirrored resources stay
// still. A failed write (the target restarting) is counted, never fatal.
type Churn struct {
	rate   float64
	cm     dynamic.ResourceInterface
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time

	seq, writes, failed, skipped atomic.Int64
	stopped                      atomic.Bool
	mu                           sync.Mutex
	firstErr                     error
	perSecond                    map[int64]int // acknowledged writes per second since the start
}

// StartChurn creates the churner's namespace and ConfigMap at s (as its
// admin) and writes the ConfigMap rate times a second until Stop.
func StartChurn(ctx context.Context, s *localcluster.APIServer, rate float64) (*Churn, error) {
	cfg := s.RESTConfig()
	cfg.QPS, cfg.Burst = -1, 0 // the ticker sets the rate
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ChurnNamespace}}}
	if _, err := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	cm := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ChurnNamespace)
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": churnName}, "data": map[string]any{"n": "0"}}}
	if _, err := cm.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	c := &Churn{rate: rate, cm: cm, done: make(chan struct{}), start: time.Now(), perSecond: map[int64]int{}}
	ctx, c.cancel = context.WithCancel(context.Background())
	go c.run(ctx)
	return c, nil
}

// ChurnFor starts a Churn for a test, stopped (and its figures logged)
// when the test ends, unless the test stopped it before.
func ChurnFor(t testing.TB, ctx context.Context, s *localcluster.APIServer, rate float64) *Churn {
	t.Helper()
	c, err := StartChurn(ctx, s, rate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !c.stopped.Load() {
			t.Log(c.Stop())
		}
	})
	return c
}

func (c *Churn) run(ctx context.Context) {
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
			c.skipped.Add(1)
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

func (c *Churn) write(ctx context.Context) {
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

// Writes is how many writes the target acknowledged so far.
func (c *Churn) Writes() int64 { return c.writes.Load() }

// Stop stops the churner (again: a no-op), waits for its writes in flight
// and describes what it did: the achieved rate (with a warning below 90%
// of the asked one), the slowest full second, and the failed and skipped
// writes.
func (c *Churn) Stop() string {
	c.stopped.Store(true)
	c.cancel()
	<-c.done
	elapsed := time.Since(c.start)
	c.mu.Lock()
	defer c.mu.Unlock()
	achieved := float64(c.writes.Load()) / elapsed.Seconds()
	s := fmt.Sprintf("the churner wrote %s/%s %d times in %s, %.1f/s of the %g/s asked",
		ChurnNamespace, churnName, c.writes.Load(), elapsed.Round(100*time.Millisecond), achieved, c.rate)
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
		s += fmt.Sprintf(". **Warning**: below 90%% of the asked rate, so the busy figures are for a quieter target than %g writes/s", c.rate)
	}
	return s + "."
}
