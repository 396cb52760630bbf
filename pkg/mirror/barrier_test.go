package mirror

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/crproxy/crproxy/pkg/reconnect"
	"github.com/crproxy/crproxy/pkg/store"
)

// barrierResource is a namespaced resource over fake clients whose
// barrier writes answer with the resourceVersions of writes.
func barrierResource(t *testing.T, writes func(verb string) (runtime.Object, error)) (*Resource, *store.Cache, *[]string) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := st.Cache(store.Key{Target: "p/t", Group: "example.com", Version: "v1", Resource: "things"})
	c.Bookmark(10)
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "ThingList"})
	var verbs []string
	for _, verb := range []string{"patch", "create"} {
		dyn.PrependReactor(verb, "things", func(a clienttesting.Action) (bool, runtime.Object, error) {
			verbs = append(verbs, a.GetVerb()+" "+a.GetNamespace())
			obj, err := writes(a.GetVerb())
			return true, obj, err
		})
	}
	owner := map[string]string{"vcluster.com/owner-vcluster": "c", "vcluster.com/owner-project": "p"}
	r := NewResource(gvr, metav1.APIResource{Name: "things", Kind: "Thing", Namespaced: true})
	r.Selector, r.Cache, r.ownerLabels = labels.SelectorFromSet(owner), c, owner
	r.Target = &Target{ID: "p/t", Identity: "loft:vcluster:p-p:c", Dynamic: dyn, Kube: kubefake.NewClientset(), Connection: reconnect.NewTracker("p/t", reconnect.Options{})}
	r.barriers.probe = r.writeBarrier
	r.probe.probe = func(context.Context) (uint64, error) { return 10, nil }
	return r, c, &verbs
}

func barrierObject(rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("Thing")
	u.SetNamespace(BarrierNamespace)
	u.SetName("crproxy-barrier-x")
	u.SetLabels(map[string]string{BarrierLabel: "x"})
	u.SetResourceVersion(rv)
	return u
}

// A consistent read returns only once the mirror holds the barrier write's
// resourceVersion; the barrier's event moves the mirror on without adding
// an object; the first barrier creates the object (and its namespace).
func TestWaitConsistentWaitsForTheBarrier(t *testing.T) {
	r, c, verbs := barrierResource(t, func(verb string) (runtime.Object, error) {
		if verb == "patch" {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "things"}, "crproxy-barrier-x")
		}
		return barrierObject("20"), nil
	})
	done := make(chan error, 1)
	go func() { done <- r.WaitConsistent(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("returned (%v) before the mirror held the barrier", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := (reflectorStore{cache: c}).Update(barrierObject("20")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Snapshot().Len() != 0 || c.ResourceVersion() != 20 {
		t.Errorf("cache holds %d objects at %d; want none at 20", c.Snapshot().Len(), c.ResourceVersion())
	}
	if got := strings.Join(*verbs, ","); got != "patch "+BarrierNamespace+",create "+BarrierNamespace {
		t.Errorf("barrier writes %q", got)
	}
}

// A target that refuses the barrier object (here its schema) leaves the
// settle heuristic, with a Warning-worthy error kept for barrierRetry.
func TestBarrierRefusedFallsBack(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "example.com", Kind: "Thing"}, "crproxy-barrier-x", field.ErrorList{field.Required(field.NewPath("spec"), "")})
	r, _, verbs := barrierResource(t, func(verb string) (runtime.Object, error) {
		if verb == "patch" {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "things"}, "crproxy-barrier-x")
		}
		return nil, invalid
	})
	for range 3 {
		if err := r.WaitConsistent(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(*verbs) != 2 {
		t.Errorf("barrier writes %q; want one try (patch, create) until barrierRetry", *verbs)
	}
}

// A 403 to the barrier's create (RBAC without create in BarrierNamespace)
// refuses the barrier object, not the identity: reads fall back to the
// settle heuristic and the target's state is left as it was, where it used
// to turn Forbidden and every read of the target carried a Warning that
// it refused the identity.
func TestBarrierForbiddenLeavesTheTargetsState(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "example.com", Resource: "things"}, "crproxy-barrier-x", nil)
	r, _, _ := barrierResource(t, func(verb string) (runtime.Object, error) {
		if verb == "patch" {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "things"}, "crproxy-barrier-x")
		}
		return nil, forbidden
	})
	before := r.Target.Connection.Status().State
	if err := r.WaitConsistent(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.Target.Connection.Status().State; got != before {
		t.Errorf("the target's state went from %q to %q on a refused barrier", before, got)
	}
}
