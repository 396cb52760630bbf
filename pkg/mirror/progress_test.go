package mirror

import (
	"context"
	"fmt"
	"path/filepath"
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

// A read's request for the target's progress ends the follower's watch
// and reopens it from the mirror's resourceVersion (for the bookmark the
// target sends before that watch's short deadline); the bookmark moves
// the mirror on and ends that watch. A request while it is open waits for
// its bookmark, then opens another, so a bookmark under way is not put
// off. A watch for a bookmark that reaches its deadline without one mutes
// the requests: they would only keep ending the long watch.
func TestProgressRequestReopensTheWatch(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := st.Cache(store.Key{Target: "p/t", Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource})
	if err := c.Replace(nil, 10); err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "ThingList"})
	var (
		mu       sync.Mutex
		watchRVs []string
		watchers = make(chan *watch.FakeWatcher, 10)
	)
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx, func(context.Context) error { return nil }, zap.NewNop())
	}()
	defer func() { cancel(); <-done }()
	next := func(what string) *watch.FakeWatcher {
		t.Helper()
		select {
		case w := <-watchers:
			return w
		case <-time.After(5 * time.Second):
			t.Fatalf("no watch was opened %s", what)
			return nil
		}
	}
	none := func(what string) {
		t.Helper()
		select {
		case <-watchers:
			t.Fatalf("a watch was opened %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}

	first := next("at the start")
	r.progress.request()
	forProgress := next("for the request")
	if !first.IsStopped() {
		t.Error("the watch open at the request was not ended")
	}
	r.progress.request()
	none("while the watch for a request was open")
	bookmark := &unstructured.Unstructured{}
	bookmark.SetResourceVersion("25")
	forProgress.Action(watch.Bookmark, bookmark)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := c.WaitForResourceVersion(wctx, 25); err != nil {
		t.Fatalf("the bookmark did not move the mirror: at %d", c.ResourceVersion())
	}
	again := next("for the request made while the first was open")
	if !forProgress.IsStopped() {
		t.Error("the watch for a bookmark went on after its bookmark")
	}
	again.Action(watch.Bookmark, bookmark)
	next("to follow on")
	none("without a request")

	// A target that sends no bookmark by the deadline: muted.
	r.progress.request()
	silent := next("for a request")
	time.Sleep(progressWatchLived)
	silent.Stop() // its deadline
	next("to follow on after the silent watch")
	r.progress.request()
	none("for a request after a watch for a bookmark got none")

	mu.Lock()
	defer mu.Unlock()
	if want := "[10 10 25 25 25 25]"; fmt.Sprint(watchRVs) != want {
		t.Errorf("watches from %v, want %s", watchRVs, want)
	}
}
