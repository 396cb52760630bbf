package mirror

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"

	"github.com/crproxy/crproxy/pkg/store"
)

// selectionState is the target's state of the mirrored selection at one
// resourceVersion, as far as a consistent read needs it: which objects
// exist, and at which versions. The mirror reflects it once it holds every
// event of the selection the target had committed at that
// resourceVersion.
//
// crproxy learns it with a consistent LIST of the selection's metadata at
// the target (resourceVersion unset, the mirror's own selector,
// PartialObjectMetadata in protobuf): it writes nothing, needs only the
// list permission the mirror has anyway, and costs the target less than
// the list a pass-through proxy would send (no object bodies). The watch
// that fills the mirror delivers the selection's events in
// resourceVersion order; so the mirror at resourceVersion M holds every
// event up to M, and it reflects the state at R when M ≥ R, or when M is
// at least the newest listed version and it holds no object, as of R or
// before, that the list lacks (a deletion still in flight).
type selectionState struct {
	// resourceVersion is the list's: every write the target acknowledged
	// before the list was sent is at or below it.
	resourceVersion uint64
	// newest is the highest resourceVersion of a listed object.
	newest uint64
	// objects are the listed objects by "namespace/name".
	objects map[string]listedObject
}

// listedObject is one object of a selectionState.
type listedObject struct {
	uid             string
	resourceVersion uint64
}

// newSelectionState builds the state a metadata list describes.
func newSelectionState(list *metav1.PartialObjectMetadataList) (*selectionState, error) {
	rv, err := parseResourceVersion(list.ResourceVersion)
	if err != nil {
		return nil, err
	}
	s := &selectionState{resourceVersion: rv, objects: make(map[string]listedObject, len(list.Items))}
	for i := range list.Items {
		m := &list.Items[i]
		orv, err := parseResourceVersion(m.ResourceVersion)
		if err != nil {
			return nil, err
		}
		s.objects[m.Namespace+"/"+m.Name] = listedObject{uid: string(m.UID), resourceVersion: orv}
		s.newest = max(s.newest, orv)
	}
	return s, nil
}

// reflectedBy reports whether the mirror's snapshot reflects s, listed in
// scope: a read in scope from it misses no write the target had
// acknowledged at s's resourceVersion. An object that left the scope
// (its labels changed) before then counts as a deletion from it.
func (s *selectionState) reflectedBy(snap *store.Snapshot, scope Scope) bool {
	rv := snap.ResourceVersion()
	if rv >= s.resourceVersion {
		return true
	}
	if rv < s.newest {
		return false
	}
	// Every listed write has arrived; a deletion at or below s's
	// resourceVersion may not have: an object of that age the list lacks.
	reflected := true
	snap.Ascend(scope.Namespace, "", "", func(o *store.Object) bool {
		if o.ResourceVersion > s.resourceVersion || (scope.Matches != nil && !scope.Matches(o)) {
			return true // created or changed since the list, or out of scope
		}
		listed, ok := s.objects[o.Namespace+"/"+o.Name]
		reflected = ok && listed.uid == o.UID
		return reflected
	})
	return reflected
}

// listSelection asks the target for the current state of the selection
// in scope.
func (r *Resource) listSelection(ctx context.Context, scope Scope) (*selectionState, error) {
	selector := r.Selector.String()
	if scope.LabelSelector != "" {
		if selector != "" {
			selector += ","
		}
		selector += scope.LabelSelector
	}
	var lister metadata.ResourceInterface = r.Target.metadata.Resource(r.GVR)
	if scope.Namespace != "" {
		lister = r.Target.metadata.Resource(r.GVR).Namespace(scope.Namespace)
	}
	list, err := lister.List(ctx, metav1.ListOptions{LabelSelector: selector, FieldSelector: scope.FieldSelector})
	r.Target.Connection.Observe(err)
	if err != nil {
		return nil, err
	}
	return newSelectionState(list)
}

// waitReflected waits, bounded by reflectTimeout, until the mirror
// reflects s, listed in scope.
func (r *Resource) waitReflected(ctx context.Context, s *selectionState, scope Scope) error {
	wait, cancel := context.WithTimeout(ctx, reflectTimeout)
	defer cancel()
	for {
		snap := r.Cache.Snapshot()
		if s.reflectedBy(snap, scope) {
			return nil
		}
		if err := r.Cache.WaitForResourceVersion(wait, snap.ResourceVersion()+1); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the mirror did not reflect the target's state at resourceVersion %d within %s", s.resourceVersion, reflectTimeout)
		}
	}
}

// maxSharedScopes bounds the scopes whose state concurrent reads share:
// callers choose selectors, and a read of any other scope asks alone.
const maxSharedScopes = 64

// sharedSelections are the shared calls for the selection's state, one
// per scope read lately.
type sharedSelections struct {
	mu    sync.Mutex
	calls map[string]*sharedCall[*selectionState]
}

// call returns the shared call of scope's state, made with list.
func (s *sharedSelections) call(scope Scope, list func(context.Context, Scope) (*selectionState, error)) *sharedCall[*selectionState] {
	key := scope.key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.calls[key]; ok {
		return c
	}
	c := &sharedCall[*selectionState]{call: func(ctx context.Context) (*selectionState, error) { return list(ctx, scope) }}
	if s.calls == nil {
		s.calls = map[string]*sharedCall[*selectionState]{}
	}
	if len(s.calls) < maxSharedScopes {
		s.calls[key] = c
	}
	return c
}
