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

// followedTarget is a fake target's dynamic client for a follower: it
// counts lists and hands each watch it opens to the test.
type followedTarget struct {
	watchers chan *watch.FakeWatcher

	mu       sync.Mutex
	lists    int
	watchRVs []string
}

// followed returns a resource of gvr whose cache holds objects at rv, and
// the fake target it follows; its follower runs until the test ends.
func followed(t *testing.T, rv uint64, objects ...*store.Object) (*Resource, *followedTarget) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Cache(store.Key{Target: "p/t", Group: followedGVR.Group, Version: followedGVR.Version, Resource: followedGVR.Resource})
	if err := c.Replace(objects, rv); err != nil {
		t.Fatal(err)
	}
	f := &followedTarget{watchers: make(chan *watch.FakeWatcher, 10)}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{followedGVR: "ThingList"})
	dyn.PrependReactor("list", "things", func(clienttesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		f.lists++
		f.mu.Unlock()
		return false, nil, nil
	})
	dyn.PrependWatchReactor("things", func(action clienttesting.Action) (bool, watch.Interface, error) {
		f.mu.Lock()
		f.watchRVs = append(f.watchRVs, action.(clienttesting.WatchActionImpl).WatchRestrictions.ResourceVersion)
		f.mu.Unlock()
		w := watch.NewFakeWithChanSize(10, false)
		f.watchers <- w
		return true, w, nil
	})
	r := &Resource{GVR: followedGVR, Selector: labels.Everything(), Cache: c, Target: &Target{ID: "p/t", dynamic: dyn, Connection: reconnect.NewTracker("p/t", reconnect.Options{})}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx, func(context.Context) error { return nil }, zap.NewNop())
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = st.Close()
	})
	return r, f
}

// followedGVR is the resource followed tests follow.
var followedGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}

// next returns the next watch the follower opens.
func (f *followedTarget) next(t *testing.T, what string) *watch.FakeWatcher {
	t.Helper()
	select {
	case w := <-f.watchers:
		return w
	case <-time.After(5 * time.Second):
		t.Fatalf("no watch was opened %s", what)
		return nil
	}
}

// opened returns how many lists the target served and the
// resourceVersions its watches started from.
func (f *followedTarget) opened() (lists int, watchRVs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists, append([]string(nil), f.watchRVs...)
}

// waitRV waits until r's mirror holds rv.
func waitRV(t *testing.T, r *Resource, rv uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Cache.WaitForResourceVersion(ctx, rv); err != nil {
		t.Fatalf("the mirror did not reach resourceVersion %d: at %d", rv, r.Cache.ResourceVersion())
	}
}

// thing is a followed object at rv with spec.value.
func thing(name, rv, value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("Thing")
	u.SetNamespace("default")
	u.SetName(name)
	u.SetResourceVersion(rv)
	_ = unstructured.SetNestedField(u.Object, value, "spec", "value")
	return u
}

// TestRunResumesWithoutListing: a mirror that holds a state (as after a
// restart) resumes with a watch from its resourceVersion, and a watch that
// breaks is resumed from the newest resourceVersion; the target is never
// listed.
func TestRunResumesWithoutListing(t *testing.T) {
	persisted, _ := reflectorStore{}.encode(thing("a", "10", "old"))
	r, target := followed(t, 10, persisted)

	w := target.next(t, "at the start")
	w.Modify(thing("a", "11", "new"))
	waitRV(t, r, 11)
	w.Stop() // the connection broke
	w = target.next(t, "after the watch broke")
	w.Add(thing("b", "12", "added"))
	waitRV(t, r, 12)

	lists, watchRVs := target.opened()
	if lists != 0 {
		t.Errorf("the target was listed %d times; want resumed watches only", lists)
	}
	if len(watchRVs) < 2 || watchRVs[0] != "10" || watchRVs[1] != "11" {
		t.Errorf("watches started at resourceVersions %v; want 10, then 11", watchRVs)
	}
	if o, _, ok := r.Cache.Get("default", "a"); !ok || !containsString(o.JSON, `"new"`) {
		t.Errorf("object a is not the modified one")
	}
	if _, _, ok := r.Cache.Get("default", "b"); !ok {
		t.Errorf("object b, added after the resumption, is missing")
	}
}

func containsString(b []byte, s string) bool { return strings.Contains(string(b), s) }
