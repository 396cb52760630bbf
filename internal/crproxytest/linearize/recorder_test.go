package linearize

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"k8s.io/client-go/rest"
)

// fakeServer serves MyResources of one namespace from memory, as a
// kube-apiserver would, except that reads may answer the state of lag
// writes ago (a mirror behind), with a crproxy Warning when warn is set.
type fakeServer struct {
	mu     sync.Mutex
	states []map[string]wireObject // every state, oldest first
	rv     int
	lag    int
	warn   bool
}

func newFakeServer(lag int, warn bool) *fakeServer {
	return &fakeServer{states: []map[string]wireObject{{}}, lag: lag, warn: warn}
}

func (f *fakeServer) status(w http.ResponseWriter, code int, reason, name string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":%q,"code":%d,"details":{"name":%q}}`, reason, code, name)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/apis/example.com/v1/namespaces/ns/myresources"
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, prefix), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	current := f.states[len(f.states)-1]
	next := map[string]wireObject{}
	for k, v := range current {
		next[k] = v
	}
	commit := func(o wireObject) {
		f.rv++
		o.Metadata.ResourceVersion = fmt.Sprint(f.rv)
		if o.Metadata.Name != "" {
			next[o.Metadata.Name] = o
		}
		f.states = append(f.states, next)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(o)
	}
	switch r.Method {
	case http.MethodPost:
		var o wireObject
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &o)
		if _, ok := current[o.Metadata.Name]; ok {
			f.status(w, 409, "AlreadyExists", o.Metadata.Name)
			return
		}
		commit(o)
	case http.MethodPatch:
		o, ok := current[name]
		if !ok {
			f.status(w, 404, "NotFound", name)
			return
		}
		var p wireObject
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &p)
		labels := map[string]string{}
		for k, v := range o.Metadata.Labels {
			labels[k] = v
		}
		for k, v := range p.Metadata.Labels {
			labels[k] = v
		}
		o.Metadata.Labels, o.Spec.Name = labels, p.Spec.Name
		commit(o)
	case http.MethodDelete:
		if _, ok := current[name]; !ok {
			f.status(w, 404, "NotFound", name)
			return
		}
		delete(next, name)
		commit(wireObject{})
	case http.MethodGet:
		seen := f.states[max(0, len(f.states)-1-f.lag)]
		if f.warn && f.lag > 0 {
			w.Header().Add("Warning", `299 crproxy "target unreachable; serving cached data"`)
		}
		if name != "" {
			o, ok := seen[name]
			if !ok {
				f.status(w, 404, "NotFound", name)
				return
			}
			_ = json.NewEncoder(w).Encode(o)
			return
		}
		selector := r.URL.Query().Get("labelSelector")
		var items []wireObject
		for _, o := range seen {
			if k, v, ok := strings.Cut(selector, "="); !ok || o.Metadata.Labels[k] == v {
				items = append(items, o)
			}
		}
		sort.Slice(items, func(i, j int) bool { return items[i].Metadata.Name < items[j].Metadata.Name })
		// One page: the test's lists are short, and the fake has no
		// snapshots to continue from.
		_ = json.NewEncoder(w).Encode(map[string]any{"metadata": map[string]any{"resourceVersion": fmt.Sprint(f.rv)}, "items": items})
	}
}

// runFake records a short workload against a fake server and checks it.
func runFake(t *testing.T, lag int, warn bool) (Result, Stats) {
	t.Helper()
	srv := httptest.NewServer(newFakeServer(lag, warn))
	t.Cleanup(srv.Close)
	ep, err := NewEndpoint("fake", &rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, a := ep.Get(context.Background(), "ns", "lin-0", ""); a.Code != 404 || a.Dialed.IsZero() {
		t.Fatalf("GET of a missing object: %s, dialed %s", a.Describe(), a.Dialed)
	}
	rec := NewRecorder(Group{Namespace: "ns", Prefix: "lin-", Keys: 3})
	wl := &Workload{Recorder: rec, Writers: []*Endpoint{ep, ep}, Readers: []*Endpoint{ep, ep}, Pause: 2 * time.Millisecond}
	wl.Start(context.Background())
	time.Sleep(300 * time.Millisecond)
	wl.Stop()
	res, err := rec.Check(time.Minute, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return res, rec.Stats()
}

// The recorder's history of an exact server is linearizable; of a server
// whose reads lag, it is not; and reads that say they lag are left out.
func TestRecorderAgainstFakeServer(t *testing.T) {
	res, stats := runFake(t, 0, false)
	if res.Outcome != porcupine.Ok || stats.Reads < 20 || stats.WritesOK < 10 || stats.ReadsWarned != 0 {
		t.Fatalf("exact server: %s after %d operations; %s", res.Outcome, res.Operations, stats)
	}
	t.Logf("exact server: %d operations checked in %s; %s", res.Operations, res.Took, stats)

	res, stats = runFake(t, 2, false)
	if res.Outcome != porcupine.Illegal || res.Visualization == "" {
		t.Fatalf("lagging server: %s after %d operations; %s", res.Outcome, res.Operations, stats)
	}

	res, stats = runFake(t, 2, true)
	if res.Outcome != porcupine.Ok || stats.ReadsWarned == 0 || stats.Reads != 0 {
		t.Fatalf("lagging server that warns: %s after %d operations; %s", res.Outcome, res.Operations, stats)
	}
}
