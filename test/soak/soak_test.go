package soak

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

var (
	soakDuration     = flag.Duration("soak.duration", 3*time.Minute, "how long to soak (cycles keep starting until then)")
	restartInterval  = flag.Duration("soak.restart-interval", 15*time.Second, "time between the end of one outage and the start of the next")
	targetRestarts   = flag.Int("soak.target-restarts", 0, "end after this many target restarts instead of after soak.duration (0: by duration)")
	killCrproxyEvery = flag.Int("soak.kill-crproxy-every", 4, "every Nth cycle kills crproxy with SIGKILL instead of stopping the target (0: never)")
	writerCount      = flag.Int("soak.writers", 3, "concurrent writers")
	readerCount      = flag.Int("soak.readers", 2, "concurrent readers")
	watcherCount     = flag.Int("soak.watchers", 2, "informers through the client cluster")
)

// convergenceBound is the longest the mirror may take to equal the target
// after an outage ends.
const convergenceBound = 60 * time.Second

func TestMain(m *testing.M) { clustertest.Main(m) }

// ownerSelector selects the client's objects at the target.
const ownerSelector = "vcluster.com/owner-vcluster=client,vcluster.com/owner-project=default"

// windows records when crproxy was down, so reads that failed because
// crproxy itself was gone are told apart from reads that must not fail.
type windows struct {
	mu    sync.Mutex
	spans [][2]time.Time
	open  time.Time
}

func (w *windows) begin() { w.mu.Lock(); w.open = time.Now(); w.mu.Unlock() }
func (w *windows) end() {
	w.mu.Lock()
	w.spans = append(w.spans, [2]time.Time{w.open, time.Now()})
	w.open = time.Time{}
	w.mu.Unlock()
}

// overlaps reports whether [from, to] touches a down window (with margin
// for the aggregator noticing crproxy is back).
func (w *windows) overlaps(from, to time.Time) bool {
	const margin = 3 * time.Second
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.open.IsZero() && to.After(w.open.Add(-margin)) {
		return true
	}
	for _, s := range w.spans {
		if to.After(s[0].Add(-margin)) && from.Before(s[1].Add(margin)) {
			return true
		}
	}
	return false
}

// stats are the readers' counts.
type stats struct {
	reads, warned, failedCrproxyDown atomic.Int64
	mu                               sync.Mutex
	failures                         []string
}

func TestSoak(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	if err := crproxytest.InstallCRD(ctx, target, "myresource-crd-status.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := crproxytest.Apply(ctx, target, "target-rbac.yaml"); err != nil {
		t.Fatal(err)
	}

	// Beside the clusters' folders, so a failing run keeps crproxy's log
	// and data with theirs.
	dir := filepath.Join(clustertest.Environment(t).Dir, "crproxy-soak")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := crproxytest.New(crproxytest.Options{
		Client: client, Config: crproxytest.Config("client", client, target), Dir: dir,
		Process: true, ExtraArgs: []string{"--log-level=debug"}, ServiceName: "crproxy-soak",
	})
	if err != nil {
		t.Fatal(err)
	}
	proxy := p.Process()
	clustertest.ReportOnFailure(t, "crproxy", proxy.LogPath)
	t.Cleanup(proxy.Stop)
	startProxy := func() { t.Helper(); p.Restart(t) }
	startProxy()

	clientCfg := client.RESTConfig()
	clientCfg.QPS, clientCfg.Burst = 1000, 1000
	// client-go retries a 503 with Retry-After by itself (up to 10 times),
	// as kubectl does; count those refusals, which the writers never see.
	refused := &refusalCounter{}
	writerCfg := rest.CopyConfig(clientCfg)
	writerCfg.Wrap(refused.wrap)
	targetDyn, err := dynamic.NewForConfig(target.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	atTarget := targetDyn.Resource(crproxytest.MyResources).Namespace("default")
	clientDyn, err := dynamic.NewForConfig(clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	throughClient := clientDyn.Resource(crproxytest.MyResources).Namespace("default")
	writerDyn, err := dynamic.NewForConfig(writerCfg)
	if err != nil {
		t.Fatal(err)
	}
	writes := writerDyn.Resource(crproxytest.MyResources).Namespace("default")

	m := newModel()
	down := &windows{}
	rs := &stats{}
	work, stopWork := context.WithCancel(ctx)
	var workers sync.WaitGroup
	for i := range *writerCount {
		workers.Add(1)
		go func() { defer workers.Done(); write(work, writes, m, fmt.Sprintf("w%d-", i)) }()
	}
	for range *readerCount {
		workers.Add(1)
		go func() { defer workers.Done(); read(work, t, clientCfg, m, down, rs) }()
	}
	var informers []cache.SharedIndexInformer
	var seen []*eventLog
	for range *watcherCount {
		factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(clientDyn, 0, "default", nil)
		inf := factory.ForResource(crproxytest.MyResources).Informer()
		log := &eventLog{last: map[string]string{}}
		_, _ = inf.AddEventHandler(log)
		informers = append(informers, inf)
		seen = append(seen, log)
		// The watchers outlive the writers: they must end with the
		// target's final state.
		go inf.Run(ctx.Done())
	}

	var (
		cycles, restarts, kills int
		convergence             []time.Duration
		samples                 []sample
	)
	start := time.Now()
	pid := proxy.PID()
	for {
		if *targetRestarts > 0 && restarts >= *targetRestarts {
			break
		}
		if *targetRestarts == 0 && time.Since(start) >= *soakDuration {
			break
		}
		time.Sleep(*restartInterval)
		cycles++
		downtime := time.Second + time.Duration(rand.Int64N(int64(9*time.Second)))
		if *killCrproxyEvery > 0 && cycles%*killCrproxyEvery == 0 {
			kills++
			down.begin()
			proxy.Kill()
			time.Sleep(downtime)
			startProxy()
			down.end()
			pid = proxy.PID()
		} else {
			restarts++
			target.Stop()
			time.Sleep(downtime)
			if err := target.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		took, err := converge(ctx, atTarget, throughClient)
		if err != nil {
			t.Fatalf("cycle %d: the mirror did not equal the target within %s: %v", cycles, convergenceBound, err)
		}
		convergence = append(convergence, took)
		samples = append(samples, sampleOf(pid, cycles, goroutinesOf(ctx, client.RESTConfig(), proxy.Port)))
		t.Logf("cycle %d: %s down %s, mirror equal to the target %s after it came back", cycles, map[bool]string{true: "crproxy", false: "target"}[cycles%max(*killCrproxyEvery, 1) == 0 && *killCrproxyEvery > 0], downtime.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	stopWork()
	workers.Wait()

	// Final state: the target is up, crproxy is up; nothing is moving.
	final, err := atTarget.List(ctx, metav1.ListOptions{LabelSelector: ownerSelector})
	if err != nil {
		t.Fatal(err)
	}
	targetValues := map[string]string{}
	targetRVs := map[string]string{}
	for _, item := range final.Items {
		v, _, _ := unstructured.NestedString(item.Object, "spec", "name")
		targetValues[item.GetName()] = v
		targetRVs[item.GetName()] = item.GetResourceVersion()
	}
	lost, ghosts := m.check(targetValues)
	for _, l := range lost {
		t.Errorf("acknowledged write lost: %s", l)
	}
	for _, g := range ghosts {
		t.Errorf("ghost at the target (no write created it): %s", g)
	}
	if took, err := converge(ctx, atTarget, throughClient); err != nil {
		t.Errorf("final: the mirror does not equal the target: %v", err)
	} else {
		convergence = append(convergence, took)
	}
	for i, inf := range informers {
		deadline := time.Now().Add(convergenceBound)
		for {
			got := map[string]string{}
			for _, obj := range inf.GetStore().List() {
				u := obj.(*unstructured.Unstructured)
				got[u.GetName()] = u.GetResourceVersion()
			}
			diff := diffMaps(targetRVs, got)
			if diff == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("watcher %d does not end with the target's state: %s; its handler saw: %s; unknown-outcome writes: %v", i, diff, seen[i].describe(targetRVs, got), m.unknownNames())
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if t.Failed() {
		// Keep the evidence: where every goroutine of this test's clients,
		// and of crproxy, stands.
		if f, err := os.Create(filepath.Join(dir, "soak-goroutines.txt")); err == nil {
			_ = pprof.Lookup("goroutine").WriteTo(f, 2)
			f.Close()
			t.Logf("goroutines of crproxy in %s, of the test in %s", proxy.LogPath, f.Name())
		}
		proxy.DumpGoroutines()
	}
	rs.mu.Lock()
	for _, f := range rs.failures {
		t.Errorf("read failed while crproxy was up: %s", f)
	}
	rs.mu.Unlock()
	checkGrowth(t, samples)

	sort.Slice(convergence, func(i, j int) bool { return convergence[i] < convergence[j] })
	maxRSS := 0
	for _, s := range samples {
		maxRSS = max(maxRSS, s.rssKiB)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nsoak summary (%s)\n", time.Since(start).Round(time.Second))
	fmt.Fprintf(&b, "  cycles                       %d (target restarts %d, crproxy kill -9 %d)\n", cycles, restarts, kills)
	fmt.Fprintf(&b, "  writes acknowledged          %d\n", m.counts[acknowledged])
	fmt.Fprintf(&b, "  writes failed (not written)  %d\n", m.counts[failed])
	fmt.Fprintf(&b, "  503 + Retry-After refusals   %d (retried by client-go until the target was back)\n", refused.n.Load())
	fmt.Fprintf(&b, "  writes with unknown outcome  %d\n", m.counts[unknown])
	fmt.Fprintf(&b, "  objects at the target        %d (lost %d, ghosts %d)\n", len(targetValues), len(lost), len(ghosts))
	fmt.Fprintf(&b, "  reads                        %d (served offline with the warning %d, failed while crproxy was down %d, failed otherwise %d)\n",
		rs.reads.Load(), rs.warned.Load(), rs.failedCrproxyDown.Load(), len(rs.failures))
	fmt.Fprintf(&b, "  time to convergence          p50 %s, p99 %s, max %s (%d recoveries)\n",
		percentile(convergence, 0.5), percentile(convergence, 0.99), percentile(convergence, 1), len(convergence))
	fmt.Fprintf(&b, "  crproxy max RSS              %d MiB\n", maxRSS>>10)
	for _, s := range samples {
		fmt.Fprintf(&b, "    after cycle %2d  pid %7d  RSS %4d MiB  threads %3d  goroutines %4d\n", s.cycle, s.pid, s.rssKiB>>10, s.threads, s.goroutines)
	}
	t.Log(b.String())
}

// classify tells what a write's answer says about its outcome.
func classify(err error) outcome {
	if err == nil {
		return acknowledged
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		switch {
		case s.Code == 503 && strings.Contains(s.Message, "nothing was written"):
			return failed
		case s.Code == 503 && strings.Contains(s.Message, "connect: connection refused"):
			// The client cluster's aggregator could not reach crproxy:
			// the request never left it.
			return failed
		case s.Code == 409 || s.Code == 404 || s.Code == 422 || s.Code == 400:
			return failed
		}
	}
	return unknown
}

// write creates, updates and deletes the writer's own objects through the
// client cluster until ctx ends, recording every answer in m.
func write(ctx context.Context, rc dynamic.ResourceInterface, m *model, prefix string) {
	seq := 0
	for ctx.Err() == nil {
		opCtx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		name, value, ok := m.pick(prefix, func(n int) int { return rand.IntN(n) })
		switch r := rand.IntN(10); {
		case !ok || r < 4:
			seq++
			name = fmt.Sprintf("%s%d", prefix, seq)
			v := fmt.Sprintf("created-%d", seq)
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("example.com/v1")
			u.SetKind("MyResource")
			u.SetName(name)
			_ = unstructured.SetNestedField(u.Object, v, "spec", "name")
			_, err := rc.Create(opCtx, u, metav1.CreateOptions{})
			m.record(name, absent, v, classify(err))
		case r < 8:
			current, err := rc.Get(opCtx, name, metav1.GetOptions{})
			if err == nil {
				v := fmt.Sprintf("updated-%d-%d", seq, rand.IntN(1000))
				_ = unstructured.SetNestedField(current.Object, v, "spec", "name")
				_, err = rc.Update(opCtx, current, metav1.UpdateOptions{})
				m.record(name, value, v, classify(err))
			}
		default:
			err := rc.Delete(opCtx, name, metav1.DeleteOptions{})
			m.record(name, value, absent, classify(err))
		}
		cancel()
		time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
	}
}

// warningCounter counts crproxy's stale-read warnings.
type warningCounter struct{ n atomic.Int64 }

func (w *warningCounter) HandleWarningHeader(_ int, _ string, text string) {
	if strings.Contains(text, "serving cached data") {
		w.n.Add(1)
	}
}

// read lists and gets through the client cluster until ctx ends. A read
// must never fail while crproxy runs, target down or not.
func read(ctx context.Context, t *testing.T, cfg *rest.Config, m *model, down *windows, rs *stats) {
	counter := &warningCounter{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = counter
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Error(err)
		return
	}
	rc := dc.Resource(crproxytest.MyResources).Namespace("default")
	for ctx.Err() == nil {
		before := counter.n.Load()
		start := time.Now()
		opCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		if name, _, ok := m.pick("w", func(n int) int { return rand.IntN(n) }); ok && rand.IntN(2) == 0 {
			_, err = rc.Get(opCtx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				err = nil // deleted since it was picked: an answer all the same
			}
		} else {
			_, err = rc.List(opCtx, metav1.ListOptions{})
		}
		cancel()
		rs.reads.Add(1)
		if counter.n.Load() > before {
			rs.warned.Add(1)
		}
		if err != nil {
			if down.overlaps(start, time.Now()) {
				rs.failedCrproxyDown.Add(1)
			} else {
				rs.mu.Lock()
				rs.failures = append(rs.failures, fmt.Sprintf("%s at %s", err, start.Format(time.RFC3339Nano)))
				rs.mu.Unlock()
			}
		}
		time.Sleep(time.Duration(10+rand.IntN(40)) * time.Millisecond)
	}
}

// converge waits until crproxy's state at the target's current
// resourceVersion X (resourceVersionMatch=Exact) equals the target's list
// at X, and returns how long that took.
func converge(ctx context.Context, atTarget, throughClient dynamic.ResourceInterface) (time.Duration, error) {
	start := time.Now()
	var last error
	for time.Since(start) < convergenceBound {
		opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		want, err := atTarget.List(opCtx, metav1.ListOptions{LabelSelector: ownerSelector})
		if err == nil {
			var got *unstructured.UnstructuredList
			got, err = throughClient.List(opCtx, metav1.ListOptions{ResourceVersion: want.GetResourceVersion(), ResourceVersionMatch: metav1.ResourceVersionMatchExact})
			if err == nil {
				if diff := diffMaps(rvs(want), rvs(got)); diff != "" {
					err = errors.New(diff)
				}
			}
		}
		cancel()
		if err == nil {
			return time.Since(start), nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return 0, last
}

func rvs(list *unstructured.UnstructuredList) map[string]string {
	out := map[string]string{}
	for _, item := range list.Items {
		out[item.GetName()] = item.GetResourceVersion()
	}
	return out
}

// diffMaps describes how got differs from want ("" when equal).
func diffMaps(want, got map[string]string) string {
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: want rv %s, got %q", k, v, got[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, k+": not at the target")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i].Round(time.Millisecond)
}

// eventLog remembers the last notification an informer handler got per
// object, to explain a watcher that does not end with the target's state.
type eventLog struct {
	mu   sync.Mutex
	last map[string]string
}

func (l *eventLog) note(what string, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		if d, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
			u, ok = d.Obj.(*unstructured.Unstructured)
		}
	}
	if !ok {
		return
	}
	l.mu.Lock()
	l.last[u.GetName()] = what + "@" + u.GetResourceVersion() + " " + time.Now().Format("15:04:05.000")
	l.mu.Unlock()
}

func (l *eventLog) OnAdd(obj any, _ bool) { l.note("add", obj) }
func (l *eventLog) OnUpdate(_, obj any)   { l.note("update", obj) }
func (l *eventLog) OnDelete(obj any)      { l.note("delete", obj) }

// describe tells, for each object where want and got differ, what the
// handler last saw of it.
func (l *eventLog) describe(want, got map[string]string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, v := range want {
		if got[k] != v {
			out = append(out, k+": "+l.last[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+": "+l.last[k])
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// refusalCounter counts answers 503 with Retry-After (crproxy's "target
// unreachable, nothing was written").
type refusalCounter struct{ n atomic.Int64 }

func (c *refusalCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			c.n.Add(1)
		}
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
