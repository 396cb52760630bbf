package mirror

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/crproxy/crproxy/pkg/reconnect"
	"github.com/crproxy/crproxy/pkg/store"
)

// TestSettleHeuristic: the fallback read waits the settle window
// when the target is ahead of the mirror with no event of the selection to
// come; a later read that probes no newer resourceVersion does not wait
// again, one that probes a newer one does.
func TestSettleHeuristic(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := st.Cache(store.Key{Target: "p/t", Group: "example.com", Version: "v1", Resource: "things"})
	c.Bookmark(10)
	targetRV := uint64(15) // others wrote at the target: it is ahead
	r := &Resource{Cache: c}
	r.probe.probe = func(context.Context) (uint64, error) { return targetRV, nil }
	read := func() time.Duration {
		start := time.Now()
		if err := r.settle(context.Background()); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if took := read(); took < settleWindow {
		t.Errorf("first read took %s; want the settle window (%s)", took, settleWindow)
	}
	if took := read(); took >= settleWindow/2 {
		t.Errorf("second read at the same target resourceVersion took %s; want no wait", took)
	}
	targetRV = 16
	if took := read(); took < settleWindow {
		t.Errorf("read after a newer write at the target took %s; want the settle window", took)
	}
	// The mirror went back in time (resynced from a rebuilt target): what
	// settled before says nothing any more.
	if err := c.Reset("new-uid"); err != nil {
		t.Fatal(err)
	}
	c.Bookmark(5)
	targetRV = 16
	if took := read(); took < settleWindow {
		t.Errorf("read after the mirror was reset took %s; want the settle window", took)
	}
}

// TestProbeListsWhereItIsCheap: the consistency probe of a namespaced
// resource lists in an empty namespace (its cost at the target then does
// not grow with the resource's objects); a cluster-scoped one lists the
// cluster.
func TestProbeListsWhereItIsCheap(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}
	for _, namespaced := range []bool{true, false} {
		dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "ThingList"})
		var listedIn []string
		dyn.PrependReactor("list", "things", func(action clienttesting.Action) (bool, runtime.Object, error) {
			listedIn = append(listedIn, action.GetNamespace())
			list := &unstructured.UnstructuredList{}
			list.SetResourceVersion("42")
			return true, list, nil
		})
		r := NewResource(gvr, metav1.APIResource{Name: "things", Namespaced: namespaced})
		r.Selector = labels.Everything()
		r.Target = &Target{ID: "p/t", Dynamic: dyn, Connection: reconnect.NewTracker("p/t", reconnect.Options{})}
		rv, err := r.currentResourceVersion(context.Background())
		if err != nil || rv != 42 {
			t.Fatalf("namespaced %v: rv %d, %v", namespaced, rv, err)
		}
		want := ""
		if namespaced {
			want = probeNamespace
		}
		if len(listedIn) != 1 || listedIn[0] != want {
			t.Errorf("namespaced %v: listed in %q, want %q", namespaced, listedIn, want)
		}
	}
}
