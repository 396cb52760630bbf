package mirror

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// crdResource is where a target keeps its CRDs.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdAccessRecheck is how often a target whose CRDs the client identity
// may not read is asked again.
const crdAccessRecheck = 5 * time.Minute

// targetCRDs is what crproxy knows of the target's CRDs of proxied
// resources beyond discovery.
//
// Their version warnings are the warnings the target adds to every request
// of a custom resource's version: its deprecation ("example.com/v1beta1 Widget
// is deprecated; use example.com/v1 Widget", or the CRD's own
// deprecationWarning). Reads served from the mirror carry them as the
// target's own answers do (writes carry the target's answers' headers).
//
// They come from two sources. Where the client identity may list and watch
// CRDs at the target, a watch of the proxied resources' CRDs, so a change
// of deprecation shows at once (watchCRDs). Otherwise, the Warning headers
// of the target's answers to the mirror's own lists and watches of the
// resource (observe), which reflect a change at the next list or watch.
//
// With the watch, each CRD's generation (which changes with its spec:
// schema, printer columns, deprecation) is known too: it is part of the
// discovery fingerprint, so such a change makes the client's aggregator
// read crproxy's discovery and OpenAPI again, and crproxy's own printer
// columns and OpenAPI be read anew (onChange).
type targetCRDs struct {
	// onChange is called when a watched CRD's generation changes.
	onChange func()

	mu sync.RWMutex
	// generations of the CRDs the watch has seen, by group/resource.
	generations map[schema.GroupResource]int64
	// fromCRDs holds, per resource whose CRD the watch has seen, the
	// warnings its CRD gives; it wins over observed.
	fromCRDs map[schema.GroupVersionResource][]string
	observed map[schema.GroupVersionResource][]string
	watching bool
}

// get returns the warnings of gvr's requests.
func (v *targetCRDs) get(gvr schema.GroupVersionResource) []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if w, ok := v.fromCRDs[gvr]; ok || v.watching {
		return w
	}
	return v.observed[gvr]
}

// observe records the warnings of the target's answer to a read of a
// whole resource (GET /apis/<group>/<version>/<resource>, a list or a
// watch across namespaces: the mirror's own). Other requests say nothing
// of the version alone: a write's answer carries admission's warnings
// too.
func (v *targetCRDs) observe(req *http.Request, resp *http.Response) {
	if req.Method != http.MethodGet || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return
	}
	i := strings.Index(req.URL.Path, "/apis/")
	if i < 0 {
		return
	}
	parts := strings.Split(strings.Trim(req.URL.Path[i+len("/apis/"):], "/"), "/")
	if len(parts) != 3 || strings.HasPrefix(parts[0], "apiextensions.k8s.io") {
		return
	}
	gvr := schema.GroupVersionResource{Group: parts[0], Version: parts[1], Resource: parts[2]}
	var texts []string
	if warnings, _ := utilnet.ParseWarningHeaders(resp.Header.Values("Warning")); len(warnings) > 0 {
		for _, w := range warnings {
			texts = append(texts, w.Text)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.observed == nil {
		v.observed = map[schema.GroupVersionResource][]string{}
	}
	v.observed[gvr] = texts
}

// generation returns the generation of gr's CRD, 0 when the watch has
// not seen it.
func (v *targetCRDs) generation(gr schema.GroupResource) int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.generations[gr]
}

// setCRD records the warnings of every version of a CRD and its
// generation (versions nil: deleted).
func (v *targetCRDs) setCRD(group, plural string, generation int64, byVersion map[string][]string, versions []string) {
	v.mu.Lock()
	changed := v.generations[schema.GroupResource{Group: group, Resource: plural}] != generation
	v.setCRDLocked(group, plural, generation, byVersion, versions)
	v.mu.Unlock()
	if changed && v.onChange != nil {
		v.onChange()
	}
}

func (v *targetCRDs) setCRDLocked(group, plural string, generation int64, byVersion map[string][]string, versions []string) {
	if v.fromCRDs == nil {
		v.fromCRDs = map[schema.GroupVersionResource][]string{}
		v.generations = map[schema.GroupResource]int64{}
	}
	gr := schema.GroupResource{Group: group, Resource: plural}
	if versions == nil {
		delete(v.generations, gr)
	} else {
		v.generations[gr] = generation
	}
	for gvr := range v.fromCRDs {
		if gvr.Group == group && gvr.Resource == plural {
			delete(v.fromCRDs, gvr)
		}
	}
	for _, ver := range versions {
		v.fromCRDs[schema.GroupVersionResource{Group: group, Version: ver, Resource: plural}] = byVersion[ver]
	}
}

func (v *targetCRDs) setWatching(on bool) {
	v.mu.Lock()
	v.watching = on
	changed := !on && len(v.generations) > 0
	if !on {
		v.fromCRDs, v.generations = nil, nil
	}
	v.mu.Unlock()
	if changed && v.onChange != nil {
		v.onChange()
	}
}

// crdWarnings returns the warnings of each served version of crd, as
// apiextensions-apiserver's handler computes them, and the versions.
func crdWarnings(crd *unstructured.Unstructured) (group, plural string, byVersion map[string][]string, served []string) {
	group, _, _ = unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ = unstructured.NestedString(crd.Object, "spec", "names", "plural")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	type ver struct {
		name               string
		served, deprecated bool
		warning            *string
	}
	var vs []ver
	for _, raw := range versions {
		m, _ := raw.(map[string]any)
		v := ver{}
		v.name, _ = m["name"].(string)
		v.served, _ = m["served"].(bool)
		v.deprecated, _ = m["deprecated"].(bool)
		if w, ok := m["deprecationWarning"].(string); ok {
			v.warning = &w
		}
		vs = append(vs, v)
	}
	byVersion = map[string][]string{}
	for _, v := range vs {
		if v.served {
			served = append(served, v.name)
		}
		if !v.deprecated {
			continue
		}
		if v.warning != nil {
			byVersion[v.name] = append(byVersion[v.name], *v.warning)
			continue
		}
		// defaultDeprecationWarning
		msg := group + "/" + v.name + " " + kind + " is deprecated"
		var newer []string
		for _, o := range vs {
			if o.served && !o.deprecated && version.CompareKubeAwareVersionStrings(v.name, o.name) < 0 {
				newer = append(newer, o.name)
			}
		}
		if len(newer) > 0 {
			sort.Slice(newer, func(i, j int) bool { return version.CompareKubeAwareVersionStrings(newer[i], newer[j]) > 0 })
			msg += "; use " + group + "/" + newer[0] + " " + kind
		}
		byVersion[v.name] = append(byVersion[v.name], msg)
	}
	return group, plural, byVersion, served
}

// watchCRDs keeps t's version warnings from the CRDs of groups while a
// group/version tracks t (the platform allows it) and the client
// identity may list and watch CRDs at t (asked by a
// SelfSubjectAccessReview, again every crdAccessRecheck when not), until
// ctx ends.
func (t *Target) watchCRDs(ctx context.Context, groups map[string]bool, log *zap.Logger) {
	for ctx.Err() == nil {
		if !t.discoveryPoller.subscribed() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(gatePoll):
			}
			continue
		}
		allowed, err := t.mayWatchCRDs(ctx)
		if allowed && !t.runCRDWatch(ctx, groups, log) {
			continue
		}
		wait := crdAccessRecheck
		if err != nil {
			// The target did not answer: ask again soon.
			wait = gatePoll * 20
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// mayWatchCRDs asks the target whether the client identity may list and
// watch CRDs; err is set when the target did not answer.
func (t *Target) mayWatchCRDs(ctx context.Context) (bool, error) {
	for _, verb := range []string{"list", "watch"} {
		review, err := t.kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Group: crdResource.Group, Resource: crdResource.Resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		if !review.Status.Allowed {
			return false, nil
		}
	}
	return true, nil
}

// runCRDWatch runs an informer of the target's CRDs, keeping only what
// the warnings need of the CRDs of groups, until ctx ends, the platform
// withdraws the target, or the identity is refused (then it reports
// refused).
func (t *Target) runCRDWatch(ctx context.Context, groups map[string]bool, log *zap.Logger) (refused bool) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var forbidden atomic.Bool
	crds := t.dynamic.Resource(crdResource)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list, err := crds.List(ctx, opts)
			if apierrors.IsForbidden(err) {
				forbidden.Store(true)
				stop()
			}
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return crds.Watch(ctx, opts)
		},
	}
	apply := func(obj any) {
		crd, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		group, plural, byVersion, served := crdWarnings(crd)
		if groups[group] {
			t.crds.setCRD(group, plural, crd.GetGeneration(), byVersion, served)
		}
	}
	remove := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if crd, ok := obj.(*unstructured.Unstructured); ok {
			group, plural, _, _ := crdWarnings(crd)
			t.crds.setCRD(group, plural, 0, nil, nil)
		}
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &unstructured.Unstructured{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    apply,
			UpdateFunc: func(_, obj any) { apply(obj) },
			DeleteFunc: remove,
		},
		// Only what the warnings need stays in memory, not the schemas.
		Transform: func(obj any) (any, error) {
			crd, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return obj, nil
			}
			return trimCRD(crd), nil
		},
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		informer.RunWithContext(ctx)
	}()
	go func() {
		// The platform withdrew the target: stop asking it.
		tick := time.NewTicker(gatePoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if !t.discoveryPoller.subscribed() {
					stop()
					return
				}
			}
		}
	}()
	defer t.crds.setWatching(false)
	if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.crds.setWatching(true)
		log.Info("watching the target's CRDs for version warnings and generations", zap.String("target", t.ID))
	}
	<-done
	return forbidden.Load()
}

// trimCRD keeps of crd its name, generation, group, names and versions'
// names, served and deprecation fields.
func trimCRD(crd *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{}}
	out.SetAPIVersion(crd.GetAPIVersion())
	out.SetKind(crd.GetKind())
	out.SetName(crd.GetName())
	out.SetResourceVersion(crd.GetResourceVersion())
	out.SetUID(crd.GetUID())
	out.SetGeneration(crd.GetGeneration())
	spec := map[string]any{}
	if g, ok, _ := unstructured.NestedString(crd.Object, "spec", "group"); ok {
		spec["group"] = g
	}
	if names, ok, _ := unstructured.NestedMap(crd.Object, "spec", "names"); ok {
		spec["names"] = names
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var kept []any
	for _, raw := range versions {
		m, _ := raw.(map[string]any)
		v := map[string]any{}
		for _, k := range []string{"name", "served", "deprecated", "deprecationWarning"} {
			if x, ok := m[k]; ok {
				v[k] = x
			}
		}
		kept = append(kept, v)
	}
	spec["versions"] = kept
	out.Object["spec"] = spec
	return out
}
