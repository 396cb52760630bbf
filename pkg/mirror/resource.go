package mirror

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

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

// Resource is one proxied resource of one target: its discovery entry, the
// cache that mirrors it, and the reflector that fills the cache.
type Resource struct {
	// GVR names the resource.
	GVR schema.GroupVersionResource
	// Access is the client's access mode for the resource's group/version.
	Access config.AccessMode
	// Selector is what the mirror watches: the client's owner labels in
	// owned mode, everything in all mode. Callers' selectors narrow it.
	Selector labels.Selector
	// Cache holds the mirrored objects.
	Cache *store.Cache
	// Target is where the resource is stored.
	Target *Target

	// served is the target's discovery of the resource, replaced when the
	// target's CRD changes (discovery_poller.go).
	served atomic.Pointer[servedAPI]

	// selections learn the selection's state at the target, one list
	// per scope shared by concurrent consistent reads
	// (selection_state.go).
	selections sharedSelections
	inflight   atomic.Int32 // consistent reads under way
	// progress carries reads' requests for the target's bookmark to the
	// follower (progress.go).
	progress progressRequests
}

// servedAPI is what the target's discovery says of a resource.
type servedAPI struct {
	api          metav1.APIResource
	subresources []metav1.APIResource // "<plural>/<subresource>" entries crproxy serves
}

// servedSubresources are the subresources crproxy serves when the target
// does.
var servedSubresources = map[string]bool{"status": true, "scale": true}

// newServedAPI keeps api and the entries of its subresources in list that
// crproxy serves.
func newServedAPI(api metav1.APIResource, list []metav1.APIResource) *servedAPI {
	s := &servedAPI{api: api}
	for _, sub := range list {
		if base, name, ok := strings.Cut(sub.Name, "/"); ok && base == api.Name && servedSubresources[name] {
			s.subresources = append(s.subresources, sub)
		}
	}
	return s
}

func newResource(t *Target, gvp config.GroupVersionProxy, served *servedAPI, selector labels.Selector, c *store.Cache) *Resource {
	r := &Resource{
		GVR:      gvp.GroupVersion.WithResource(served.api.Name),
		Access:   gvp.Access,
		Selector: selector,
		Cache:    c,
		Target:   t,
	}
	r.served.Store(served)
	return r
}

// NewResource returns a resource that is described but not mirrored (no
// target, no cache): for documents built from discovery, and for tests.
// subresources are the target's "<plural>/<subresource>" entries.
func NewResource(gvr schema.GroupVersionResource, api metav1.APIResource, subresources ...metav1.APIResource) *Resource {
	r := &Resource{GVR: gvr}
	r.served.Store(newServedAPI(api, subresources))
	return r
}

// API returns the resource's discovery entry at the target. Its name, kind
// and scope never change for a Resource (a change of kind or scope makes a
// new one); the rest follows the target's CRD.
func (r *Resource) API() metav1.APIResource { return r.served.Load().api }

// VersionWarnings returns the warnings the target adds to every request of
// the resource's version (its deprecation), for reads served from the
// mirror to carry.
func (r *Resource) VersionWarnings() []string {
	if r.Target == nil {
		return nil
	}
	return r.Target.crds.get(r.GVR)
}

// Subresources returns the target's discovery entries of the subresources
// crproxy serves for the resource ("<plural>/status", "<plural>/scale"),
// as the target describes them.
func (r *Resource) Subresources() []metav1.APIResource { return r.served.Load().subresources }

// ServesSubresource reports whether the target serves the subresource
// name of the resource's objects ("" is the object itself) and crproxy
// serves it too.
func (r *Resource) ServesSubresource(name string) bool {
	if name == "" {
		return true
	}
	for _, sub := range r.served.Load().subresources {
		if sub.Name == r.GVR.Resource+"/"+name {
			return true
		}
	}
	return false
}

// client is the dynamic client of the resource across all namespaces.
func (r *Resource) client() dynamic.NamespaceableResourceInterface {
	return r.Target.dynamic.Resource(r.GVR)
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
				conn.MarkSynced()
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
				conn.MarkSynced()
				return e, true
			}), nil
		},
	}
	expected := &unstructured.Unstructured{}
	expected.SetGroupVersionKind(r.GVR.GroupVersion().WithKind(r.API().Kind))
	return cache.NewReflectorWithOptions(lw, expected, reflectorStore{cache: r.Cache, onReplace: onReplace, passthrough: r.Target.Passthrough}, cache.ReflectorOptions{
		Name: fmt.Sprintf("%s %s", r.Target.ID, r.GVR),
	})
}
