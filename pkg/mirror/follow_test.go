package mirror

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/crproxy/crproxy/pkg/reconnect"
	"github.com/crproxy/crproxy/pkg/store"
)

// TestRunResumesWithoutListing: a mirror that holds a state (as after a
// restart) resumes with a watch from its resourceVersion, and a watch that
// breaks is resumed from the newest resourceVersion; the target is never
// listed.
func TestRunResumesWithoutListing(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}
	thing := func(name, rv, value string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("example.com/v1")
		u.SetKind("Thing")
		u.SetNamespace("default")
		u.SetName(name)
		u.SetResourceVersion(rv)
		_ = unstructured.SetNestedField(u.Object, value, "spec", "value")
		return u
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := st.Cache(store.Key{Target: "p/t", Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource})
	persisted, _ := reflectorStore{}.encode(thing("a", "10", "old"))
	if err := c.Replace([]*store.Object{persisted}, 10); err != nil {
		t.Fatal(err)
	}

	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "ThingList"})
	var (
		mu       sync.Mutex
		lists    int
		watchRVs []string
		watchers = make(chan *watch.FakeWatcher, 10)
	)
	dyn.PrependReactor("list", "things", func(clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		lists++
		mu.Unlock()
		return false, nil, nil
	})
	dyn.PrependWatchReactor("things", func(action clienttesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		watchRVs = append(watchRVs, action.(clienttesting.WatchActionImpl).WatchRestrictions.ResourceVersion)
		mu.Unlock()
		w := watch.NewFakeWithChanSize(10, false)
		watchers <- w
		return true, w, nil
	})
	r := &Resource{GVR: gvr, Selector: labels.Everything(), Cache: c, Target: &Target{ID: "p/t", dynamic: dyn, Connection: reconnect.NewTracker("p/t", reconnect.Options{})}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx, func(context.Context) error { return nil }, zap.NewNop())
	}()
	next := func() *watch.FakeWatcher {
		select {
		case w := <-watchers:
			return w
		case <-time.After(5 * time.Second):
			t.Fatal("no watch was opened")
			return nil
		}
	}
	waitRV := func(rv uint64) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := c.WaitForResourceVersion(wctx, rv); err != nil {
			t.Fatalf("the mirror did not reach resourceVersion %d: at %d", rv, c.ResourceVersion())
		}
	}

	w := next()
	w.Modify(thing("a", "11", "new"))
	waitRV(11)
	w.Stop() // the connection broke
	w = next()
	w.Add(thing("b", "12", "added"))
	waitRV(12)
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	if lists != 0 {
		t.Errorf("the target was listed %d times; want resumed watches only", lists)
	}
	if len(watchRVs) < 2 || watchRVs[0] != "10" || watchRVs[1] != "11" {
		t.Errorf("watches started at resourceVersions %v; want 10, then 11", watchRVs)
	}
	if o, _, ok := c.Get("default", "a"); !ok || !containsString(o.JSON, `"new"`) {
		t.Errorf("object a is not the modified one")
	}
	if _, _, ok := c.Get("default", "b"); !ok {
		t.Errorf("object b, added after the resumption, is missing")
	}
}

func containsString(b []byte, s string) bool { return strings.Contains(string(b), s) }
