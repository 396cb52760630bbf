package mirror

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
)

// The client's view of ownerReferences and GC finalizers (see
// docs/design/write-path.md, "ownerReferences and the garbage
// collectors"). pkg/writethrough writes the target form; the mirror turns
// every object it ingests back into the client's view, so get, list, watch
// and the persisted mirror all serve it.
const (
	// ClientOwnerReferencesAnnotation holds, at the target, the
	// ownerReferences list the client last wrote (JSON, in its order),
	// when it names an owner the target does not hold. Hidden from the
	// view.
	ClientOwnerReferencesAnnotation = "crproxy.dev/client-owner-references"
	// TargetOwnerReferencesAnnotation carries, in the view only, the
	// target's ownerReferences that are not passthrough (JSON), so the
	// writer can put them back; it is never written to a target.
	TargetOwnerReferencesAnnotation = "crproxy.dev/target-owner-references"
	// OrphanFinalizer and ForegroundFinalizer are the client's "orphan"
	// and "foregroundDeletion" at the target: only the client's garbage
	// collector acts on them. The swap is its own inverse (the target's
	// own "orphan" reads as OrphanFinalizer), so nothing is lost either
	// way.
	OrphanFinalizer     = "crproxy.dev/orphan"
	ForegroundFinalizer = "crproxy.dev/foreground-deletion"
)

// SwapFinalizer maps a GC finalizer between the client's and the target's
// name (in both directions: the mapping is an involution); any other
// finalizer is returned unchanged.
func SwapFinalizer(f string) string {
	switch f {
	case "orphan":
		return OrphanFinalizer
	case OrphanFinalizer:
		return "orphan"
	case "foregroundDeletion":
		return ForegroundFinalizer
	case ForegroundFinalizer:
		return "foregroundDeletion"
	}
	return f
}

// IsSwappedFinalizer reports whether SwapFinalizer changes f.
func IsSwappedFinalizer(f string) bool { return SwapFinalizer(f) != f }

// ownerKinds is the set of group/kinds a target's proxied resources have:
// the passthrough owners. It counts the resources of each kind (two
// versions of a group serve the same kinds), so that a kind leaves the set
// when the target serves none of its resources any more.
type ownerKinds struct {
	mu    sync.RWMutex
	kinds map[schema.GroupKind]int
}

func (k *ownerKinds) add(gk schema.GroupKind) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kinds == nil {
		k.kinds = map[schema.GroupKind]int{}
	}
	k.kinds[gk]++
}

func (k *ownerKinds) remove(gk schema.GroupKind) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kinds[gk] <= 1 {
		delete(k.kinds, gk)
		return
	}
	k.kinds[gk]--
}

func (k *ownerKinds) has(gk schema.GroupKind) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.kinds[gk] > 0
}

// Passthrough reports whether an ownerReference of apiVersion and kind
// names a resource this crproxy proxies to t: such a reference means the
// same object on both sides and passes through unchanged. The set is the
// kinds of the resources t's group/versions serve now, as discovered (or
// persisted).
func (t *Target) Passthrough(apiVersion, kind string) bool {
	group := ""
	if i := strings.IndexByte(apiVersion, '/'); i >= 0 {
		group = apiVersion[:i]
	}
	return t.ownerKinds.has(schema.GroupKind{Group: group, Kind: kind})
}

// AddPassthroughKind records that t proxies gk (for tests and discovery).
func (t *Target) AddPassthroughKind(gk schema.GroupKind) { t.ownerKinds.add(gk) }

// PassthroughFunc decides whether an ownerReference passes through.
type PassthroughFunc func(apiVersion, kind string) bool

// ViewObject turns a target object (decoded JSON) into the client's view,
// in place, and reports whether it changed anything:
//
//   - ownerReferences: the list the client wrote (the annotation), each
//     passthrough entry kept only while the target still has it (in the
//     target's version), then the passthrough references the target added;
//     without the annotation, the target's passthrough references. The
//     target's other references are hidden, carried in
//     TargetOwnerReferencesAnnotation;
//   - ClientOwnerReferencesAnnotation is hidden;
//   - the GC finalizers are swapped (SwapFinalizer).
//
// An object without ownerReferences, crproxy annotations and GC finalizers
// is left alone at the cost of three map lookups.
func ViewObject(obj map[string]any, passthrough PassthroughFunc) bool {
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return false
	}
	rawRefs, hasRefs := meta["ownerReferences"]
	annotations, _ := meta["annotations"].(map[string]any)
	clientRaw, hasClient := annotations[ClientOwnerReferencesAnnotation]
	_, hasTargetAnn := annotations[TargetOwnerReferencesAnnotation]
	finalizers, _ := meta["finalizers"].([]any)
	swap := false
	for _, f := range finalizers {
		if s, ok := f.(string); ok && IsSwappedFinalizer(s) {
			swap = true
			break
		}
	}
	if !hasRefs && !hasClient && !hasTargetAnn && !swap {
		return false
	}
	if swap {
		out := make([]any, len(finalizers))
		for i, f := range finalizers {
			if s, ok := f.(string); ok {
				f = SwapFinalizer(s)
			}
			out[i] = f
		}
		meta["finalizers"] = out
	}
	if !hasRefs && !hasClient && !hasTargetAnn {
		return true
	}
	targetRefs, _ := rawRefs.([]any)
	var pass, targetOnly []any
	for _, r := range targetRefs {
		if IsPassthroughRef(r, passthrough) {
			pass = append(pass, r)
		} else {
			targetOnly = append(targetOnly, r)
		}
	}
	view := pass
	if hasClient {
		s, _ := clientRaw.(string)
		if written, ok := ParseOwnerReferences(s); ok {
			view = mergeWritten(written, pass, passthrough)
		}
		delete(annotations, ClientOwnerReferencesAnnotation)
	}
	if len(view) > 0 {
		meta["ownerReferences"] = view
	} else {
		delete(meta, "ownerReferences")
	}
	delete(annotations, TargetOwnerReferencesAnnotation)
	if len(targetOnly) > 0 {
		data, _ := json.Marshal(targetOnly)
		if annotations == nil {
			annotations = map[string]any{}
			meta["annotations"] = annotations
		}
		annotations[TargetOwnerReferencesAnnotation] = string(data)
	}
	if annotations != nil && len(annotations) == 0 {
		delete(meta, "annotations")
	}
	return true
}

// mergeWritten is the view's ownerReferences: the client's written list,
// its passthrough entries replaced by the target's (dropped when the
// target no longer has them), then the target's passthrough references the
// list does not name.
func mergeWritten(written, pass []any, passthrough PassthroughFunc) []any {
	byUID := make(map[string]any, len(pass))
	for _, r := range pass {
		byUID[RefUID(r)] = r
	}
	used := map[string]bool{}
	view := make([]any, 0, len(written)+len(pass))
	for _, r := range written {
		if !IsPassthroughRef(r, passthrough) {
			view = append(view, r)
			continue
		}
		uid := RefUID(r)
		if t, ok := byUID[uid]; ok && !used[uid] {
			view = append(view, t)
			used[uid] = true
		}
	}
	for _, r := range pass {
		if !used[RefUID(r)] {
			view = append(view, r)
		}
	}
	return view
}

// IsPassthroughRef reports whether one ownerReference (decoded JSON)
// passes through; anything that is not an object with string apiVersion
// and kind does not.
func IsPassthroughRef(r any, passthrough PassthroughFunc) bool {
	m, ok := r.(map[string]any)
	if !ok || passthrough == nil {
		return false
	}
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	return passthrough(apiVersion, kind)
}

// RefUID is an ownerReference's uid ("" when it has none).
func RefUID(r any) string {
	m, _ := r.(map[string]any)
	uid, _ := m["uid"].(string)
	return uid
}

// ParseOwnerReferences decodes an annotation's list of ownerReferences.
func ParseOwnerReferences(s string) ([]any, bool) {
	var refs []any
	if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(s), &refs); err != nil {
		return nil, false
	}
	return refs, true
}

// viewMarkers are the byte strings without which an object's JSON needs no
// view.
var viewMarkers = [][]byte{[]byte(`"ownerReferences"`), []byte(`crproxy.dev/`), []byte(`"orphan"`), []byte(`"foregroundDeletion"`)}

// ViewJSON is ViewObject for an object's or a list's JSON (a target's
// answer to a write or a GET). JSON that needs no view, or is not an
// object, is returned as it is.
func ViewJSON(data []byte, passthrough PassthroughFunc) []byte {
	needed := false
	for _, m := range viewMarkers {
		if bytes.Contains(data, m) {
			needed = true
			break
		}
	}
	if !needed {
		return data
	}
	var doc map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &doc); err != nil {
		return data
	}
	changed := false
	if items, ok := doc["items"].([]any); ok {
		for _, item := range items {
			if m, ok := item.(map[string]any); ok && ViewObject(m, passthrough) {
				changed = true
			}
		}
	} else {
		changed = ViewObject(doc, passthrough)
	}
	if !changed {
		return data
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return data
	}
	return out
}
