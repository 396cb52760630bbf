package mirror

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/store"
)

const (
	// probeTimeout bounds one consistent-read probe of a target.
	probeTimeout = 10 * time.Second
	// settleWindow is how long a consistent read waits for events the
	// target had already committed when it answered the probe; see
	// docs/design/read-path.md.
	settleWindow = 20 * time.Millisecond
)

// Resource is one proxied resource of one target: its discovery entry, the
// cache that mirrors it, and the reflector that fills the cache.
type Resource struct {
	// GVR names the resource.
	GVR schema.GroupVersionResource
	// API is the resource's discovery entry at the target.
	API metav1.APIResource
	// Status is true when the target serves the status subresource.
	Status bool
	// Access is the client's access mode for the resource's group/version.
	Access config.AccessMode
	// Selector is what the mirror watches: the client's owner labels in
	// owned mode, everything in all mode. Callers' selectors narrow it.
	Selector labels.Selector
	// Cache holds the mirrored objects.
	Cache *store.Cache
	// Target is where the resource is stored.
	Target *Target

	probe   coalescedProbe
	settled settledResourceVersion
}

// settledResourceVersion is the highest target resourceVersion a
// consistent read has waited the settle window for: every event of the
// selection up to it had arrived, though the mirror's own resourceVersion
// may be lower. It holds only while the mirror has not gone back in time
// (a resync from a rebuilt target restarts the resourceVersions).
type settledResourceVersion struct {
	mu       sync.Mutex
	rv       uint64
	mirrorRV uint64 // the mirror's resourceVersion when rv settled
}

// covers reports whether rv is settled, the mirror being at mirrorRV.
func (s *settledResourceVersion) covers(rv, mirrorRV uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rv <= s.rv && mirrorRV >= s.mirrorRV
}

// settle records that rv settled with the mirror at mirrorRV.
func (s *settledResourceVersion) settle(rv, mirrorRV uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rv > s.rv || mirrorRV < s.mirrorRV {
		s.rv, s.mirrorRV = rv, mirrorRV
	}
}

func newResource(t *Target, gvp config.GroupVersionProxy, api metav1.APIResource, status bool, selector labels.Selector, c *store.Cache) *Resource {
	r := &Resource{
		GVR:      gvp.GroupVersion.WithResource(api.Name),
		API:      api,
		Status:   status,
		Access:   gvp.Access,
		Selector: selector,
		Cache:    c,
		Target:   t,
	}
	r.probe.probe = r.currentResourceVersion
	return r
}

// client is the dynamic client of the resource across all namespaces.
func (r *Resource) client() dynamic.NamespaceableResourceInterface {
	return r.Target.Dynamic.Resource(r.GVR)
}

// probeNamespace is where the consistency probe of a namespaced resource
// lists: a namespace that holds nothing (it need not exist). A consistent
// list's resourceVersion is the target's current one wherever it lists,
// but its cost is not: across namespaces it grows with the resource's
// objects at the target (6.5 ms at 50,000 objects against 1.1 ms for an
// empty namespace, flat), and every consistent read waits for a probe.
const probeNamespace = "crproxy-consistency-probe"

// currentResourceVersion asks the target for its current resourceVersion:
// a consistent list of at most one object of the mirrored selection, in
// probeNamespace for a namespaced resource.
func (r *Resource) currentResourceVersion(ctx context.Context) (uint64, error) {
	var lister dynamic.ResourceInterface = r.client()
	if r.API.Namespaced {
		lister = r.client().Namespace(probeNamespace)
	}
	list, err := lister.List(ctx, metav1.ListOptions{LabelSelector: r.Selector.String(), Limit: 1})
	r.Target.Connection.Observe(err)
	if err != nil {
		return 0, err
	}
	return parseResourceVersion(list.GetResourceVersion())
}

// WaitConsistent makes a read consistent: it learns the target's current
// resourceVersion (one probe shared by concurrent callers) and waits until
// the mirror holds it. The mirror's resourceVersion only moves with this
// selection's events and bookmarks, while the probe returns the target's
// global one, so when the mirror has no event at or past it, WaitConsistent
// waits a short settle window for events the target had already committed
// and returns (reads then serve at the mirror's own, truthful,
// resourceVersion). Once a read has waited the window for a resourceVersion,
// later reads that probe no newer one skip it: nothing was written anywhere
// at the target since, which on a quiet target saves every read the
// window. It returns the probe's error when the target cannot be asked; the
// caller decides whether to serve stale data.
func (r *Resource) WaitConsistent(ctx context.Context) error {
	rv, err := r.probe.Do(ctx)
	if err != nil {
		return err
	}
	mirrorRV := r.Cache.ResourceVersion()
	if mirrorRV >= rv || r.settled.covers(rv, mirrorRV) {
		return nil
	}
	settle, cancel := context.WithTimeout(ctx, settleWindow)
	defer cancel()
	if r.Cache.WaitForResourceVersion(settle, rv) != nil && ctx.Err() == nil {
		r.settled.settle(rv, r.Cache.ResourceVersion())
	}
	return ctx.Err()
}

// emptyWatchType is the type of client-go's empty watch.
var emptyWatchType = reflect.TypeOf(watch.NewEmptyWatch())

// errWatchNotOpened is a watch the connection to the target broke while
// opening; reconnect classifies it as unreachable.
var errWatchNotOpened = errors.New("the connection to the target broke while opening the watch")

// watchTarget opens a watch of the resource at the target. client-go
// answers a connection that broke while the watch was being opened with an
// empty watch and no error; that is errWatchNotOpened here: the target did
// not answer.
func (r *Resource) watchTarget(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := r.client().Watch(ctx, opts)
	if err == nil && reflect.TypeOf(w) == emptyWatchType {
		return nil, errWatchNotOpened
	}
	return w, err
}

// newReflector builds the reflector of the resource's full syncs
// (Resource.run). Every list is a consistent read (resourceVersion ""), so a
// relist never moves the cache back in time, and every list and watch
// carries the mirror's selector. Lists and watches that fail for connection
// reasons are retried here, by the target's backoff (pkg/reconnect),
// instead of by the reflector's own (800 ms to 30 s).
//
// onReplace is called each time the reflector has replaced the cache's
// contents (a list, or a watch's initial events).
func (r *Resource) newReflector(beforeList func(context.Context) error, onReplace func()) *cache.Reflector {
	selector := r.Selector.String()
	conn := r.Target.Connection
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.LabelSelector = selector
			opts.ResourceVersion = ""
			opts.ResourceVersionMatch = ""
			var list runtime.Object
			err := conn.Retry(ctx, func(ctx context.Context) error {
				if beforeList != nil {
					if err := beforeList(ctx); err != nil {
						return err
					}
				}
				var err error
				list, err = r.client().List(ctx, opts)
				return err
			})
			if err == nil {
				conn.Synced()
			}
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = selector
			opts.AllowWatchBookmarks = true
			// A watch that streams the initial state (client-go's
			// WatchList, on by default) replaces the list: check the
			// target's identity before it as before a list.
			initialState := opts.SendInitialEvents != nil && *opts.SendInitialEvents
			var w watch.Interface
			err := conn.Retry(ctx, func(ctx context.Context) error {
				if initialState && beforeList != nil {
					if err := beforeList(ctx); err != nil {
						return err
					}
				}
				var err error
				w, err = r.watchTarget(ctx, opts)
				return err
			})
			if err != nil {
				return nil, err
			}
			// Connected once the target sends something on the watch, not
			// merely because it was opened.
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				conn.EventReceived()
				conn.Synced()
				return e, true
			}), nil
		},
	}
	expected := &unstructured.Unstructured{}
	expected.SetGroupVersionKind(r.GVR.GroupVersion().WithKind(r.API.Kind))
	return cache.NewReflectorWithOptions(lw, expected, reflectorStore{cache: r.Cache, onReplace: onReplace, passthrough: r.Target.Passthrough}, cache.ReflectorOptions{
		Name: fmt.Sprintf("%s %s", r.Target.ID, r.GVR),
	})
}
