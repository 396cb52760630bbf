package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/crproxytest/linearize"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

var (
	consistencyReadRV = flag.String("consistency.read-resource-version", "",
		`resourceVersion of the reads of TestConsistencyStaleReads and TestLinearizability: "" (a consistent read, the contract under test) `+
			`or "0" (whatever the mirror holds: a negative control, which should make both tests fail)`)
	consistencyRounds = flag.Int("consistency.rounds", 1000, "rounds of TestConsistencyStaleReads")
	consistencyChurn  = flag.Float64("consistency.churn", 50, "writes per second to an unrelated ConfigMap at the target during the consistency tests")
)

// consistencySetup starts a target and a client cluster of the test's
// own (the test keeps the target busy, or restarts it), the
// documentation's MyResource with required fields (as published CRDs
// are: nothing but a user's object is valid) and RBAC, and crproxy, and
// returns the three ways to the objects (see linearize.Endpoints).
func consistencySetup(t *testing.T, ctx context.Context) (target *localcluster.APIServer, atTarget, straight, viaClient *linearize.Endpoint) {
	t.Helper()
	target = clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	installCRD(t, ctx, target, "myresource-crd-required.yaml")
	apply(t, ctx, target, "target-rbac.yaml", "multi-client-target-rbac.yaml")
	p := startProxy(t, client, crproxytest.Config("client", client, target))
	atTarget, straight, viaClient, err := linearize.Endpoints(target, client, p, "client")
	if err != nil {
		t.Fatal(err)
	}
	return target, atTarget, straight, viaClient
}

// staleTally counts the rounds of TestConsistencyStaleReads by the read's
// kind and way.
type staleTally struct {
	rounds, stale, warned, failed map[string]int
	examples                      []string
	latencies                     []time.Duration
}

func (s *staleTally) note(what string, bad map[string]int, example string) {
	bad[what]++
	if len(s.examples) < 10 {
		s.examples = append(s.examples, example)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func describeCounts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func rvNumber(rv string) uint64 {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return n
}

// A consistent read through crproxy (resourceVersion unset) reflects every
// write the target acknowledged before the read began, on a busy target:
// round after round, one write straight at the target as its admin (a
// spec or label change, a create or a delete of one of this client's
// objects), then at once one read through crproxy, alternating GET by name
// and LIST (all, by label selector, paged with limit and continue),
// straight and (one round in five) through the client cluster. The test
// is the only writer of these objects, so it knows the exact state each
// read must answer: every object at the resourceVersion of its last write.
// A read that answers anything else is stale; there must be none, and no
// read may carry a crproxy Warning (the target is up all along).
func TestConsistencyStaleReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	target, atTarget, straight, viaClient := consistencySetup(t, ctx)

	const namespace, pool = "default", 6
	name := func(i int) string { return "stale-" + strconv.Itoa(i) }
	colors := []string{"red", "blue"}
	// want is the state every read must answer: name -> object.
	want := map[string]linearize.Object{}
	object := func(name, value, color string) map[string]any {
		labels := map[string]any{"color": color}
		for k, v := range atTarget.CreateLabels {
			labels[k] = v
		}
		return map[string]any{
			"apiVersion": "example.com/v1", "kind": "MyResource",
			"metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels},
			"spec":     map[string]any{"name": value},
		}
	}
	write := func(round int) (string, string) {
		n := name(rand.IntN(pool))
		current, exists := want[n]
		var (
			obj  *linearize.Object
			a    linearize.Answer
			what string
		)
		value := fmt.Sprintf("round-%d", round)
		switch r := rand.IntN(10); {
		case !exists:
			what = "create"
			obj, a = atTarget.Create(ctx, namespace, object(n, value, colors[rand.IntN(2)]))
		case r < 5:
			what = "spec"
			obj, a = atTarget.MergePatch(ctx, namespace, n, fmt.Appendf(nil, `{"spec":{"name":%q}}`, value))
		case r < 8:
			what = "label"
			flip := map[string]string{"red": "blue", "blue": "red"}[current.Labels["color"]]
			obj, a = atTarget.MergePatch(ctx, namespace, n, fmt.Appendf(nil, `{"metadata":{"labels":{"color":%q}}}`, flip))
		default:
			what = "delete"
			a = atTarget.Delete(ctx, namespace, n)
		}
		if !a.OK() {
			t.Fatalf("round %d: %s of %s at the target: %s", round, what, n, a.Describe())
		}
		if obj == nil {
			delete(want, n)
			return n, what
		}
		want[n] = *obj
		return n, what
	}
	for i := range pool {
		write(-i - 1)
	}

	churn := crproxytest.ChurnFor(t, ctx, target, *consistencyChurn)
	// The target is busy before the first round.
	crproxytest.Eventually(t, ctx, 10*time.Second, func() string {
		if *consistencyChurn > 0 && churn.Writes() < 10 {
			return "the churner has not written yet"
		}
		return ""
	})

	tally := &staleTally{rounds: map[string]int{}, stale: map[string]int{}, warned: map[string]int{}, failed: map[string]int{}}
	start := time.Now()
	for round := 0; round < *consistencyRounds; round++ {
		if ctx.Err() != nil {
			t.Fatalf("out of time after %d rounds", round)
		}
		written, how := write(round)
		ep := straight
		if round%5 == 4 {
			ep = viaClient
		}
		readStart := time.Now()
		var (
			kind, problem string
			answer        linearize.Answer
		)
		if round%2 == 0 {
			kind = "get"
			got, a := ep.Get(ctx, namespace, written, *consistencyReadRV)
			answer = a
			w, exists := want[written]
			switch {
			case a.OK() && !exists:
				problem = fmt.Sprintf("GET %s answered it at resourceVersion %s after its delete", written, got.ResourceVersion)
			case a.OK() && got.ResourceVersion != w.ResourceVersion:
				problem = fmt.Sprintf("GET %s answered resourceVersion %s, the write before it was %s", written, got.ResourceVersion, w.ResourceVersion)
			case !a.OK() && a.Err == nil && a.Code == 404 && a.Reason == "NotFound" && exists:
				problem = fmt.Sprintf("GET %s answered 404 after its %s at resourceVersion %s", written, how, w.ResourceVersion)
			case !a.OK() && !(a.Err == nil && a.Code == 404 && a.Reason == "NotFound" && !exists):
				tally.note(kind+" via "+ep.Name, tally.failed, fmt.Sprintf("round %d: GET %s via %s failed: %s", round, written, ep.Name, a.Describe()))
				continue
			}
		} else {
			var o linearize.ListOptions
			o.ResourceVersion = *consistencyReadRV
			selector := ""
			switch (round / 2) % 4 {
			case 0:
				kind = "list"
			case 1:
				kind, selector = "list by label", colors[rand.IntN(2)]
			case 2:
				kind, o.Limit = "list paged", 2
			case 3:
				kind, selector, o.Limit = "list by label paged", colors[rand.IntN(2)], 1
			}
			if selector != "" {
				o.LabelSelector = "color=" + selector
			}
			res, a := ep.List(ctx, namespace, o, nil)
			answer = a
			if res == nil {
				if w := a.CrproxyWarning(); w != "" {
					tally.note(kind+" via "+ep.Name, tally.warned, fmt.Sprintf("round %d: %s via %s: Warning %s", round, kind, ep.Name, w))
				} else {
					tally.note(kind+" via "+ep.Name, tally.failed, fmt.Sprintf("round %d: %s via %s failed: %s", round, kind, ep.Name, a.Describe()))
				}
				continue
			}
			if len(res.Warnings) > 0 {
				answer.Warnings = res.Warnings
			}
			got := map[string]string{}
			for _, item := range res.Items {
				if strings.HasPrefix(item.Name, "stale-") {
					got[item.Name] = item.ResourceVersion
				}
			}
			expect := map[string]string{}
			for n, w := range want {
				if selector == "" || w.Labels["color"] == selector {
					expect[n] = w.ResourceVersion
				}
			}
			if diff := diffRVs(expect, got); diff != "" {
				after := fmt.Sprintf("the %s of %s", how, written)
				if w, ok := want[written]; ok {
					after += " at resourceVersion " + w.ResourceVersion
				}
				problem = fmt.Sprintf("%s (%d pages, list resourceVersion %s) after %s: %s", kind, res.Pages, res.ResourceVersion, after, diff)
			}
		}
		tally.latencies = append(tally.latencies, time.Since(readStart))
		key := kind + " via " + ep.Name
		tally.rounds[key]++
		if w := answer.CrproxyWarning(); w != "" {
			tally.note(key, tally.warned, fmt.Sprintf("round %d: %s via %s: Warning %s", round, kind, ep.Name, w))
		}
		if problem != "" {
			tally.note(key, tally.stale, fmt.Sprintf("round %d (%s via %s): %s", round, kind, ep.Name, problem))
		}
		if sum(tally.failed) > 20 {
			break
		}
	}
	took := time.Since(start)
	sort.Slice(tally.latencies, func(i, j int) bool { return tally.latencies[i] < tally.latencies[j] })
	pct := func(p float64) time.Duration {
		if len(tally.latencies) == 0 {
			return 0
		}
		return tally.latencies[int(float64(len(tally.latencies)-1)*p)].Round(10 * time.Microsecond)
	}
	t.Logf("%d rounds in %s (read p50 %s, p99 %s, max %s); reads: %s", sum(tally.rounds), took.Round(time.Millisecond),
		pct(0.5), pct(0.99), pct(1), describeCounts(tally.rounds))
	t.Logf("%s", churn.Stop())
	if len(tally.examples) > 0 {
		t.Logf("first problems:\n  %s", strings.Join(tally.examples, "\n  "))
	}
	if n := sum(tally.stale); n > 0 {
		t.Errorf("%d stale answers of %d reads: %s", n, sum(tally.rounds), describeCounts(tally.stale))
	}
	if n := sum(tally.warned); n > 0 {
		t.Errorf("%d answers carried a crproxy Warning with the target up: %s", n, describeCounts(tally.warned))
	}
	if n := sum(tally.failed); n > 0 {
		t.Errorf("%d reads failed: %s", n, describeCounts(tally.failed))
	}
}

// diffRVs describes how got (name -> resourceVersion) differs from want.
func diffRVs(want, got map[string]string) string {
	var diffs []string
	for n, rv := range want {
		switch g, ok := got[n]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s missing (want resourceVersion %s)", n, rv))
		case g != rv:
			older := "older"
			if rvNumber(g) > rvNumber(rv) {
				older = "newer"
			}
			diffs = append(diffs, fmt.Sprintf("%s at resourceVersion %s, want %s (%s)", n, g, rv, older))
		}
	}
	for n, rv := range got {
		if _, ok := want[n]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s at resourceVersion %s, want absent", n, rv))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// artifactsDir is a new folder where a failing test leaves what explains
// it: beside the clusters' logs, in the environment's folder, which is
// kept when a test fails (a t.TempDir is removed even then), and one per
// run, so -count=N keeps each failure's.
func artifactsDir(t *testing.T) string {
	t.Helper()
	base := filepath.Join(clustertest.Environment(t).Dir, "artifacts")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// A concurrent history of writes (straight at the target and through
// crproxy, straight and through the client cluster) and consistent reads
// (GET and LIST, with selectors and pages, through crproxy) is
// linearizable, checked with porcupine, on a busy target that is killed
// and started again in the middle. Reads answered with crproxy's Warning
// while the target is down are stale by contract: they are left out and
// counted.
func TestLinearizability(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	target, atTarget, straight, viaClient := consistencySetup(t, ctx)
	churn := crproxytest.ChurnFor(t, ctx, target, *consistencyChurn)

	rec := linearize.NewRecorder(linearize.Group{Namespace: "default", Prefix: "lin-", Keys: 3})
	rec.ReadResourceVersion = *consistencyReadRV
	wl := linearize.MixedWorkload(rec, atTarget, straight, viaClient, 40*time.Millisecond)
	wl.Start(ctx)
	t.Logf("history time 0 is %s", rec.Began().Format("15:04:05.000000"))
	stopped := false
	defer func() {
		if !stopped {
			wl.Stop()
		}
	}()

	time.Sleep(4 * time.Second)
	before := rec.Stats()
	restart := time.Now()
	// Killed, as a crash would (a graceful stop takes 15 s here, for the
	// same lesson): writes in flight get an unknown outcome.
	target.Kill()
	rec.TargetGone()
	time.Sleep(2 * time.Second)
	rec.TargetStarting()
	if err := target.Start(ctx); err != nil {
		t.Fatal(err)
	}
	down := time.Since(restart)
	back := rec.Stats()
	time.Sleep(5 * time.Second)
	wl.Stop()
	stopped = true
	after := rec.Stats()
	t.Logf("%s", churn.Stop())
	t.Logf("history of %d operations; the target was down %s, from %d reads on; %d reads warned after it was back; %s", rec.Len(), down.Round(time.Millisecond), before.Reads, after.ReadsWarned-back.ReadsWarned, after)
	if after.Reads-back.Reads < 20 {
		t.Errorf("only %d reads checked after the target was back", after.Reads-back.Reads)
	}
	if after.WritesOK-back.WritesOK < 20 {
		t.Errorf("only %d writes acknowledged after the target was back", after.WritesOK-back.WritesOK)
	}

	linearize.RequireLinearizable(t, rec, 2*time.Minute, artifactsDir(t))
}

// Consistent reads write nothing at the target and are exact for a CRD
// with required fields and for an identity the target lets only read
// (the documentation's all-mode observer): while an admin creates,
// changes and deletes objects at the target and others keep its
// resourceVersion moving, every consistent LIST and GET straight at
// crproxy answers the target's state at once, without a Warning; and the
// target holds exactly the admin's objects and namespaces afterwards.
func TestConsistentReadsWriteNothing(t *testing.T) {
	ctx := testContextWithin(t, 3*time.Minute)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	installCRD(t, ctx, target, "myresource-crd-required.yaml")
	apply(t, ctx, target, "target-rbac-read-only.yaml")
	cfg := crproxytest.Config("observer", client, target)
	entry := cfg.Experimental.Proxy.CustomResources[crproxytest.MyResourcesKey]
	entry.AccessResources = config.AccessAll
	cfg.Experimental.Proxy.CustomResources[crproxytest.MyResourcesKey] = entry
	p := startProxy(t, client, cfg)
	atTarget, straight, _, err := linearize.Endpoints(target, client, p, "observer")
	if err != nil {
		t.Fatal(err)
	}
	crproxytest.ChurnFor(t, ctx, target, 50)

	want := map[string]string{} // name -> resourceVersion
	for round := range 12 {
		name := fmt.Sprintf("observed-%d", round%4)
		var (
			obj *linearize.Object
			a   linearize.Answer
		)
		switch _, exists := want[name]; {
		case !exists:
			obj, a = atTarget.Create(ctx, "default", map[string]any{
				"apiVersion": "example.com/v1", "kind": "MyResource",
				"metadata": map[string]any{"name": name},
				"spec":     map[string]any{"name": "one", "priority": "low"},
			})
		case round%3 == 0:
			a = atTarget.Delete(ctx, "default", name)
		default:
			obj, a = atTarget.MergePatch(ctx, "default", name, fmt.Appendf(nil, `{"spec":{"name":"round-%d"}}`, round))
		}
		if !a.OK() {
			t.Fatalf("round %d: write at the target: %s", round, a.Describe())
		}
		if obj != nil {
			want[name] = obj.ResourceVersion
		} else {
			delete(want, name)
		}
		list, a := straight.List(ctx, "default", linearize.ListOptions{}, nil)
		if !a.OK() {
			t.Fatalf("round %d: consistent list: %s", round, a.Describe())
		}
		got := map[string]string{}
		for _, o := range list.Items {
			got[o.Name] = o.ResourceVersion
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d: the consistent list holds %v; the target %v", round, got, want)
		}
		if len(list.Warnings) > 0 {
			t.Errorf("round %d: the consistent list carried Warnings %q", round, list.Warnings)
		}
		o, a := straight.Get(ctx, "default", name, "")
		switch rv, exists := want[name]; {
		case exists && (!a.OK() || o == nil || o.ResourceVersion != rv):
			t.Errorf("round %d: consistent GET of %s: %+v, %s; want resourceVersion %s", round, name, o, a.Describe(), rv)
		case !exists && a.Code != 404:
			t.Errorf("round %d: consistent GET of deleted %s: %s; want 404", round, name, a.Describe())
		}
		if w := a.CrproxyWarning(); w != "" {
			t.Errorf("round %d: the consistent GET carried a Warning: %s", round, w)
		}
	}
	var admins []string
	for name := range want {
		admins = append(admins, "default/"+name)
	}
	sort.Strings(admins)
	if got := strings.Fields(kubectl(t, ctx, target, "get", "myresources", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}")); fmt.Sprint(got) != fmt.Sprint(admins) {
		t.Errorf("the target holds the MyResources %v; want only the admin's %v", got, admins)
	}
	namespaces := kubectl(t, ctx, target, "get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}")
	if want := "crproxytest-churn default kube-node-lease kube-public kube-system"; namespaces != want {
		t.Errorf("the target's namespaces are %q; want %q (nothing of crproxy's)", namespaces, want)
	}
}

// A client that read a resourceVersion at the target (the numbering is
// the target's) and reads at it through the client cluster is answered as
// by a kube-apiserver, within its 3-s wait, also when the version moved
// only with writes the mirror never sees (a ConfigMap at the target): the
// mirror asks the target for a bookmark rather than wait for the periodic
// one, about a minute away. An exact list is the target's state at that
// version; a GET not older than it answers; a watch from it starts after
// it.
func TestReadsAtTheTargetsResourceVersion(t *testing.T) {
	ctx := testContextWithin(t, 3*time.Minute)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "progress-ns", "client", []string{"p-1", "p-2"}, "")
	startProxy(t, client, crproxytest.Config("client", client, target))
	kubectl(t, ctx, client, "create", "namespace", "progress-ns")
	atTarget := dynamicClient(t, target).Resource(crproxytest.MyResources).Namespace("progress-ns")
	through := dynamicClient(t, client).Resource(crproxytest.MyResources).Namespace("progress-ns")
	configMaps := dynamicClient(t, target).Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("progress-ns")
	owned := metav1.ListOptions{LabelSelector: "vcluster.com/owner-vcluster=client"}
	crproxytest.Eventually(t, ctx, 60*time.Second, func() string {
		list, err := through.List(ctx, metav1.ListOptions{})
		switch {
		case err != nil:
			return err.Error()
		case len(list.Items) != 2:
			return fmt.Sprintf("%d objects through the client, want 2", len(list.Items))
		}
		return ""
	})

	// moveTarget writes a ConfigMap at the target and returns the target's
	// state of the objects after it, and the mirror's resourceVersion.
	moveTarget := func(round int) (*unstructured.UnstructuredList, uint64) {
		t.Helper()
		cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": fmt.Sprintf("progress-%d", round)}}}
		if _, err := configMaps.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want, err := atTarget.List(ctx, owned)
		if err != nil {
			t.Fatal(err)
		}
		mirror, err := through.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		return want, rvNumber(mirror.GetResourceVersion())
	}
	// Read straight over HTTP: client-go would retry a 504 with
	// Retry-After and hide that the read missed the apiserver's wait.
	hc, err := rest.HTTPClientFor(client.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	open := func(query string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, client.URL+"/apis/example.com/v1/namespaces/progress-ns/myresources"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	read := func(query string) (int, []byte, time.Duration) {
		t.Helper()
		start := time.Now()
		resp := open(query)
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body, time.Since(start)
	}
	ahead := 0
	for round := range 3 {
		want, mirrorRV := moveTarget(2 * round)
		if mirrorRV < rvNumber(want.GetResourceVersion()) {
			ahead++
		}
		code, body, listed := read("?resourceVersionMatch=Exact&resourceVersion=" + want.GetResourceVersion())
		if code != http.StatusOK {
			t.Fatalf("round %d: exact list at the target's %s (mirror at %d): %d %s", round, want.GetResourceVersion(), mirrorRV, code, body)
		}
		got := &unstructured.UnstructuredList{}
		if err := got.UnmarshalJSON(body); err != nil {
			t.Fatal(err)
		}
		if got.GetResourceVersion() != want.GetResourceVersion() {
			t.Errorf("round %d: the exact list is at %s, want %s", round, got.GetResourceVersion(), want.GetResourceVersion())
		}
		if diff := diffRVs(listRVs(want), listRVs(got)); diff != "" {
			t.Errorf("round %d: the exact list differs from the target's: %s", round, diff)
		}

		want, mirrorRV = moveTarget(2*round + 1)
		if mirrorRV < rvNumber(want.GetResourceVersion()) {
			ahead++
		}
		code, body, got1 := read("/p-1?resourceVersion=" + want.GetResourceVersion())
		if code != http.StatusOK {
			t.Fatalf("round %d: GET not older than the target's %s (mirror at %d): %d %s", round, want.GetResourceVersion(), mirrorRV, code, body)
		}
		t.Logf("round %d: exact list in %s, GET not older than in %s", round, listed.Round(time.Millisecond), got1.Round(time.Millisecond))
	}

	// A watch from the target's version starts after it: its first event
	// is the change made after it.
	want, mirrorRV := moveTarget(6)
	if mirrorRV < rvNumber(want.GetResourceVersion()) {
		ahead++
	}
	resp := open("?watch=1&timeoutSeconds=30&resourceVersion=" + want.GetResourceVersion())
	if _, err := atTarget.Patch(ctx, "p-2", types.MergePatchType, []byte(`{"spec":{"priority":"low"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type   string
		Object unstructured.Unstructured
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		t.Fatalf("watch from the target's %s (mirror at %d): %d, %v", want.GetResourceVersion(), mirrorRV, resp.StatusCode, err)
	}
	if ev.Type != "MODIFIED" || ev.Object.GetName() != "p-2" || rvNumber(ev.Object.GetResourceVersion()) <= rvNumber(want.GetResourceVersion()) {
		t.Errorf("the watch from %s (answer %d) began with %q %s at %s, want the change of p-2 after it", want.GetResourceVersion(), resp.StatusCode, ev.Type, ev.Object.GetName(), ev.Object.GetResourceVersion())
	}
	if ahead == 0 {
		t.Fatal("the target's resourceVersion was never ahead of the mirror's: nothing was tested")
	}
}

// listRVs maps a list's names to their resourceVersions.
func listRVs(list *unstructured.UnstructuredList) map[string]string {
	out := map[string]string{}
	for _, item := range list.Items {
		out[item.GetName()] = item.GetResourceVersion()
	}
	return out
}
