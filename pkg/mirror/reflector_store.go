package mirror

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/crproxy/crproxy/pkg/store"
)

// reflectorStore lets a client-go Reflector feed a store.Cache: it encodes
// each object once, here, so no read ever encodes it again.
type reflectorStore struct {
	cache *store.Cache
	// passthrough, when set, turns each object into the client's view of
	// its ownerReferences and GC finalizers (owner_view.go) before it is
	// encoded: the one place objects enter the mirror.
	passthrough PassthroughFunc
	// onReplace, when set, is called after each successful Replace.
	onReplace func()
}

var (
	_ cache.ReflectorStore         = reflectorStore{}
	_ cache.ReflectorBookmarkStore = reflectorStore{}
	_ cache.ResourceVersionUpdater = reflectorStore{}
)

func (s reflectorStore) Add(obj interface{}) error {
	if rv, ok := barrierEvent(obj); ok {
		return s.Bookmark(rv)
	}
	o, err := s.encode(obj)
	if err != nil {
		return err
	}
	return s.cache.Add(o)
}

func (s reflectorStore) Update(obj interface{}) error {
	if rv, ok := barrierEvent(obj); ok {
		return s.Bookmark(rv)
	}
	o, err := s.encode(obj)
	if err != nil {
		return err
	}
	return s.cache.Update(o)
}

func (s reflectorStore) Delete(obj interface{}) error {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if rv, ok := barrierEvent(obj); ok {
		return s.Bookmark(rv)
	}
	o, err := s.encode(obj)
	if err != nil {
		return err
	}
	return s.cache.Delete(o)
}

func (s reflectorStore) Replace(list []interface{}, resourceVersion string) error {
	rv, err := parseResourceVersion(resourceVersion)
	if err != nil {
		return err
	}
	objs := make([]*store.Object, 0, len(list))
	for _, item := range list {
		if _, ok := barrierEvent(item); ok {
			continue
		}
		o, err := s.encode(item)
		if err != nil {
			return err
		}
		objs = append(objs, o)
	}
	if err := s.cache.Replace(objs, rv); err != nil {
		return err
	}
	if s.onReplace != nil {
		s.onReplace()
	}
	return nil
}

// BarrierLabel marks the consistency barrier objects earlier crproxy
// versions wrote into targets (one per client and resource, in the namespace
// crproxy-consistency): they may remain at a target, and the mirror never
// stores one; see docs/operations.md to remove them.
const BarrierLabel = "crproxy.dev/consistency-barrier"

// IsBarrier reports whether an object carries BarrierLabel.
func IsBarrier(objLabels map[string]string) bool {
	_, ok := objLabels[BarrierLabel]
	return ok
}

// barrierEvent tells a barrier object, of any client, from the objects
// the mirror holds: its event only moves the cache's resourceVersion on
// (as a bookmark), so no read ever sees it.
func barrierEvent(obj interface{}) (resourceVersion string, ok bool) {
	u, isU := obj.(*unstructured.Unstructured)
	if !isU || !IsBarrier(u.GetLabels()) {
		return "", false
	}
	return u.GetResourceVersion(), true
}

// Resync has no meaning for a store that keeps no queue.
func (s reflectorStore) Resync() error { return nil }

// Bookmark advances the cache to a bookmark's resourceVersion.
func (s reflectorStore) Bookmark(resourceVersion string) error {
	rv, err := parseResourceVersion(resourceVersion)
	if err != nil {
		return err
	}
	s.cache.Bookmark(rv)
	return nil
}

// UpdateResourceVersion is the reflector's report of the newest
// resourceVersion it has seen, bookmarks included.
func (s reflectorStore) UpdateResourceVersion(resourceVersion string) {
	if rv, err := parseResourceVersion(resourceVersion); err == nil && rv > s.cache.ResourceVersion() {
		s.cache.Bookmark(rv)
	}
}

func (s reflectorStore) encode(obj interface{}) (*store.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("mirror: unexpected object type %T", obj)
	}
	if s.passthrough != nil {
		ViewObject(u.Object, s.passthrough)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return store.NewObject(data)
}

func parseResourceVersion(rv string) (uint64, error) {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("mirror: resourceVersion %q is not a number: %w", rv, err)
	}
	return n, nil
}
