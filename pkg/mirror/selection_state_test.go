package mirror

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crproxy/crproxy/pkg/store"
)

// mirrorAt is a cache holding objects ("name@rv", uid "u-name") at
// resourceVersion rv.
func mirrorAt(t *testing.T, rv uint64, objects ...string) *store.Cache {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := st.Cache(store.Key{Target: "p/t", Group: "example.com", Version: "v1", Resource: "things"})
	var objs []*store.Object
	for _, o := range objects {
		name, rv, _ := strings.Cut(o, "@")
		objs = append(objs, storedObject(t, name, rv))
	}
	if err := c.Replace(objs, rv); err != nil {
		t.Fatal(err)
	}
	return c
}

// storedObject is ns/name at resourceVersion rv, uid "u-name".
func storedObject(t *testing.T, name, rv string) *store.Object {
	t.Helper()
	o, err := store.NewObject(fmt.Appendf(nil, `{"metadata":{"namespace":"ns","name":%q,"uid":"u-%s","resourceVersion":%q}}`, name, name, rv))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// listAt is the metadata list of objects ("name@rv") at resourceVersion rv.
func listAt(rv uint64, objects ...string) *metav1.PartialObjectMetadataList {
	list := &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{ResourceVersion: fmt.Sprint(rv)}}
	for _, o := range objects {
		name, orv, _ := strings.Cut(o, "@")
		list.Items = append(list.Items, metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: name, UID: types.UID("u-" + name), ResourceVersion: orv}})
	}
	return list
}

// The mirror reflects the target's listed state once it holds every event
// of the selection up to the list's resourceVersion, whatever other
// writers moved that resourceVersion on.
func TestSelectionStateReflectedBy(t *testing.T) {
	for _, c := range []struct {
		name   string
		mirror *store.Cache
		list   *metav1.PartialObjectMetadataList
		want   bool
	}{
		{"the mirror at the list's version", mirrorAt(t, 50, "a@20"), listAt(50, "a@20"), true},
		{"the mirror past it", mirrorAt(t, 60, "a@55"), listAt(50, "a@20"), true},
		{"others wrote since: nothing of the selection missing", mirrorAt(t, 30, "a@20", "b@30"), listAt(90, "a@20", "b@30"), true},
		{"an update not arrived", mirrorAt(t, 30, "a@20", "b@30"), listAt(90, "a@40", "b@30"), false},
		{"a create not arrived", mirrorAt(t, 30, "a@20"), listAt(90, "a@20", "c@45"), false},
		{"a deletion not arrived", mirrorAt(t, 30, "a@20", "b@30"), listAt(90, "a@20"), false},
		{"a deletion not arrived, a later create arrived", mirrorAt(t, 30, "a@20"), listAt(90, "b@25"), false},
		{"an empty selection, the mirror empty", mirrorAt(t, 10), listAt(90), true},
		{"an object created since the list", mirrorAt(t, 95, "a@20", "n@95"), listAt(90, "a@20"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := newSelectionState(c.list)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.reflectedBy(c.mirror.Snapshot(), Scope{}); got != c.want {
				t.Errorf("reflected: %v, want %v", got, c.want)
			}
		})
	}
}

// waitReflected returns as soon as the event the mirror lacked arrives,
// and fails, bounded, when it never does.
func TestWaitReflected(t *testing.T) {
	c := mirrorAt(t, 30, "a@20", "b@30")
	r := &Resource{Cache: c}
	s, err := newSelectionState(listAt(90, "a@20")) // b was deleted at 40
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = c.Delete(storedObject(t, "b", "40"))
	}()
	if err := r.waitReflected(context.Background(), s, Scope{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s, _ = newSelectionState(listAt(90, "a@60"))
	if err := r.waitReflected(ctx, s, Scope{}); err == nil {
		t.Fatal("waitReflected returned without the update it waits for")
	}
}

// A read in a scope (its selectors) is reflected once the mirror holds
// the scope's listed state: objects outside the scope, which the scoped
// list leaves out, do not hold it back; an object that left the scope
// before the list counts as deleted from it.
func TestSelectionStateReflectedInScope(t *testing.T) {
	inScope := Scope{LabelSelector: "x", Matches: func(o *store.Object) bool { return o.Name != "other" }}
	for _, c := range []struct {
		name   string
		mirror *store.Cache
		list   *metav1.PartialObjectMetadataList
		scope  Scope
		want   bool
	}{
		{"an object outside the scope, not listed", mirrorAt(t, 30, "a@20", "other@25"), listAt(90, "a@20"), inScope, true},
		{"the same without a scope: a deletion in flight", mirrorAt(t, 30, "a@20", "other@25"), listAt(90, "a@20"), Scope{}, false},
		{"an object that left the scope, its change not arrived", mirrorAt(t, 30, "a@20", "b@30"), listAt(90, "a@20"), inScope, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := newSelectionState(c.list)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.reflectedBy(c.mirror.Snapshot(), c.scope); got != c.want {
				t.Errorf("reflected: %v, want %v", got, c.want)
			}
		})
	}
}
