package writethrough

import (
	"encoding/json"
	"fmt"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// The write side of "ownerReferences and the garbage collectors"
// (docs/design/write-path.md): what a client writes is turned into the
// target form here; pkg/mirror (owner_view.go) turns the target form back
// into the client's view. In the target form
//
//   - metadata.ownerReferences holds the passthrough references the client
//     wrote, then the target-only references the object had (which the
//     client does not see, and must not drop);
//   - mirror.ClientOwnerReferencesAnnotation holds the client's whole list
//     when it names an owner that is not passthrough;
//   - the GC finalizers are swapped (mirror.SwapFinalizer);
//   - whatever the client sent for the two crproxy annotations is dropped:
//     it can neither forge nor remove them.

// refTranslator turns client writes of one target into the target form.
type refTranslator struct {
	passthrough mirror.PassthroughFunc
	gk          schema.GroupKind
	gr          schema.GroupResource
	name        string
}

// translator is the refTranslator of req's resource and object.
func translator(req *Request) refTranslator {
	res := req.Resource
	return refTranslator{
		passthrough: res.Target.Passthrough,
		gk:          schema.GroupKind{Group: res.GVR.Group, Kind: res.API().Kind},
		gr:          res.GVR.GroupResource(),
		name:        req.Name,
	}
}

// targetOnlyOf returns the target-only references a current view object
// carries in mirror.TargetOwnerReferencesAnnotation (nil when none or
// when current is nil).
func targetOnlyOf(current map[string]any) []any {
	meta, _ := current["metadata"].(map[string]any)
	annotations, _ := meta["annotations"].(map[string]any)
	s, _ := annotations[mirror.TargetOwnerReferencesAnnotation].(string)
	if s == "" {
		return nil
	}
	refs, _ := mirror.ParseOwnerReferences(s)
	return refs
}

// viewRefsOf returns a current view object's ownerReferences.
func viewRefsOf(current map[string]any) []any {
	meta, _ := current["metadata"].(map[string]any)
	refs, _ := meta["ownerReferences"].([]any)
	return refs
}

// stripAnnotations drops the crproxy annotations the client sent.
func stripAnnotations(meta map[string]any) {
	if annotations, ok := meta["annotations"].(map[string]any); ok {
		delete(annotations, mirror.ClientOwnerReferencesAnnotation)
		delete(annotations, mirror.TargetOwnerReferencesAnnotation)
	}
}

// swapFinalizers maps the GC finalizers of meta.finalizers to their target
// names (anything but a list of strings is left for the target to refuse).
func swapFinalizers(meta map[string]any) {
	list, ok := meta["finalizers"].([]any)
	if !ok {
		return
	}
	for i, f := range list {
		if s, ok := f.(string); ok {
			list[i] = mirror.SwapFinalizer(s)
		}
	}
}

// setAnnotation sets (value) or deletes (nil, in a merge patch) one
// annotation in meta, creating the map when absent. An annotations field
// that is not a map is left for the target to refuse.
func setAnnotation(meta map[string]any, key string, value any) {
	annotations, ok := meta["annotations"].(map[string]any)
	if !ok {
		if meta["annotations"] != nil {
			return
		}
		annotations = map[string]any{}
		meta["annotations"] = annotations
	}
	annotations[key] = value
}

// split sorts a client's list into the passthrough references and tells
// whether any reference is client-only; the client-only ones are checked
// the way the kube-apiserver checks references (the target never sees
// them), so a malformed one answers 400 or 422 and nothing is written.
func (t refTranslator) split(list []any) (pass []any, clientOnly bool, err error) {
	for _, r := range list {
		if mirror.IsPassthroughRef(r, t.passthrough) {
			pass = append(pass, r)
		} else {
			clientOnly = true
		}
	}
	if !clientOnly {
		return pass, false, nil
	}
	data, _ := json.Marshal(list)
	var typed []metav1.OwnerReference
	if err := json.Unmarshal(data, &typed); err != nil {
		return nil, false, apierrors.NewBadRequest(fmt.Sprintf("metadata.ownerReferences: %v", err))
	}
	if errs := apivalidation.ValidateOwnerReferences(typed, field.NewPath("metadata", "ownerReferences")); len(errs) > 0 {
		return nil, false, apierrors.NewInvalid(t.gk, t.name, errs)
	}
	return pass, true, nil
}

// appendMissing appends to refs the references of more whose uid refs
// does not have.
func appendMissing(refs, more []any) []any {
	if len(more) == 0 {
		return refs
	}
	have := map[string]bool{}
	for _, r := range refs {
		have[mirror.RefUID(r)] = true
	}
	for _, r := range more {
		if !have[mirror.RefUID(r)] {
			refs = append(refs, r)
		}
	}
	return refs
}

// wholeObject turns the metadata of a whole object (create, update, the
// local result of a JSON patch) into the target form; targetOnly are the
// target-only references of the object it replaces.
func (t refTranslator) wholeObject(meta map[string]any, targetOnly []any) error {
	stripAnnotations(meta)
	swapFinalizers(meta)
	raw, present := meta["ownerReferences"]
	list, isList := raw.([]any)
	if present && raw != nil && !isList {
		return nil // not a list: the target's 400/422
	}
	pass, clientOnly, err := t.split(list)
	if err != nil {
		return err
	}
	if clientOnly {
		data, _ := json.Marshal(list)
		setAnnotation(meta, mirror.ClientOwnerReferencesAnnotation, string(data))
	}
	sent := appendMissing(pass, targetOnly)
	if len(sent) > 0 {
		meta["ownerReferences"] = sent
	} else {
		delete(meta, "ownerReferences")
	}
	return nil
}

// applyConfiguration turns a server-side apply configuration's metadata
// into the target form. ownerReferences is a map-list keyed by uid there,
// merged with what other managers own: the passthrough entries go as
// they are, and when the configuration names a client-only owner the
// annotation becomes the current view's list with the configuration's
// entries merged in by uid (an omitted client-only entry is not removed;
// see write-path.md).
func (t refTranslator) applyConfiguration(meta map[string]any, current map[string]any) error {
	stripAnnotations(meta)
	swapFinalizers(meta)
	list, ok := meta["ownerReferences"].([]any)
	if !ok {
		return nil
	}
	pass, clientOnly, err := t.split(list)
	if err != nil {
		return err
	}
	if !clientOnly {
		return nil
	}
	merged := append([]any(nil), viewRefsOf(current)...)
	index := map[string]int{}
	for i, r := range merged {
		index[mirror.RefUID(r)] = i
	}
	for _, r := range list {
		if i, ok := index[mirror.RefUID(r)]; ok {
			merged[i] = r
		} else {
			index[mirror.RefUID(r)] = len(merged)
			merged = append(merged, r)
		}
	}
	data, _ := json.Marshal(merged)
	setAnnotation(meta, mirror.ClientOwnerReferencesAnnotation, string(data))
	if len(pass) > 0 {
		meta["ownerReferences"] = pass
	} else {
		delete(meta, "ownerReferences")
	}
	return nil
}

// mergePatch turns a JSON merge patch's metadata into the target form;
// current is the object as last seen (view form, may be nil). It reports
// whether the patch sets ownerReferences: the list then depends on
// current's target-only references, and the patch must be conditional on
// current's resourceVersion.
func (t refTranslator) mergePatch(meta map[string]any, current map[string]any) (bool, error) {
	if raw, present := meta["annotations"]; present && raw == nil {
		// "Delete every annotation" keeps its meaning for the client's
		// annotations, not for crproxy's.
		cleared := map[string]any{}
		currentMeta, _ := current["metadata"].(map[string]any)
		currentAnnotations, _ := currentMeta["annotations"].(map[string]any)
		for k := range currentAnnotations {
			if k != mirror.TargetOwnerReferencesAnnotation {
				cleared[k] = nil
			}
		}
		meta["annotations"] = cleared
	}
	stripAnnotations(meta)
	swapFinalizers(meta)
	raw, present := meta["ownerReferences"]
	if !present {
		return false, nil
	}
	targetOnly := targetOnlyOf(current)
	var sent []any
	switch list := raw.(type) {
	case nil:
		sent = targetOnly
		setAnnotation(meta, mirror.ClientOwnerReferencesAnnotation, nil)
	case []any:
		pass, clientOnly, err := t.split(list)
		if err != nil {
			return false, err
		}
		if clientOnly {
			data, _ := json.Marshal(list)
			setAnnotation(meta, mirror.ClientOwnerReferencesAnnotation, string(data))
		} else {
			setAnnotation(meta, mirror.ClientOwnerReferencesAnnotation, nil)
		}
		sent = appendMissing(pass, targetOnly)
	default:
		return false, nil // the target's 422
	}
	if len(sent) > 0 {
		meta["ownerReferences"] = sent
	} else {
		meta["ownerReferences"] = nil
	}
	return true, nil
}

// jsonPatchTouchesOwnership reports whether a JSON patch reads or writes
// ownerReferences, finalizers or annotations (or all of metadata): such a
// patch means something else on the target form, so it is applied to the
// view locally instead (jsonPatchAsMergePatch). So is a patch too long to
// take stampJSONPatch's operations within the target's
// MaxJSONPatchOperations (past MaxJSONPatchOperations itself, the local
// path answers 413).
func jsonPatchTouchesOwnership(body []byte) bool {
	var ops []map[string]any
	if err := json.Unmarshal(body, &ops); err != nil {
		return false // the 400 comes from the usual path
	}
	if len(ops)+jsonPatchStampOperations > MaxJSONPatchOperations {
		return true
	}
	for _, op := range ops {
		for _, key := range []string{"path", "from"} {
			p, _ := op[key].(string)
			if p == "" && op[key] != nil || p == "/metadata" {
				return true
			}
			for _, prefix := range []string{"/metadata/ownerReferences", "/metadata/finalizers", "/metadata/annotations"} {
				if p == prefix || strings.HasPrefix(p, prefix+"/") {
					return true
				}
			}
		}
	}
	return false
}

// jsonPatchAsMergePatch applies a JSON patch to current (the view, as
// JSON) and returns the JSON merge patch that takes the target form of
// current to the target form of the result, with the result's
// resourceVersion as its condition. stamp sets the owner labels on the
// result. Like the kube-apiserver, which applies a JSON patch to the
// object it read and stores the result conditionally on that read.
func (t refTranslator) jsonPatchAsMergePatch(body, current []byte, stamp func(map[string]any) error) ([]byte, error) {
	decoded, err := decodeJSONPatch(body)
	if err != nil {
		return nil, err
	}
	patched, err := applyJSONPatch(decoded, current)
	if err != nil {
		return nil, err
	}
	var before, after map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(current, &before); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(patched, &after); err != nil || after == nil {
		return nil, apierrors.NewGenericServerResponse(422, "", t.gr, t.name, "the patched object is not a JSON object", 0, false)
	}
	targetOnly := targetOnlyOf(before)
	beforeMeta, _ := before["metadata"].(map[string]any)
	if beforeMeta == nil {
		beforeMeta = map[string]any{}
		before["metadata"] = beforeMeta
	}
	afterMeta, ok := after["metadata"].(map[string]any)
	if !ok {
		return nil, apierrors.NewGenericServerResponse(422, "", t.gr, t.name, "metadata of the patched object must be a JSON object", 0, false)
	}
	if err := t.wholeObject(beforeMeta, targetOnly); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if err := t.wholeObject(afterMeta, targetOnly); err != nil {
		return nil, err
	}
	if err := stamp(after); err != nil {
		return nil, err
	}
	beforeJSON, _ := json.Marshal(before)
	afterJSON, _ := json.Marshal(after)
	mp, err := jsonpatch.CreateMergePatch(beforeJSON, afterJSON)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var patch map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(mp, &patch); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	meta, _ := patch["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		patch["metadata"] = meta
	}
	// The condition is the result's resourceVersion; a patch that removed
	// it was applied to current all the same, and must not land on
	// another version.
	rv := afterMeta["resourceVersion"]
	if rv == nil || rv == "" {
		rv = beforeMeta["resourceVersion"]
	}
	if rv != nil {
		meta["resourceVersion"] = rv
	}
	return json.Marshal(patch)
}

// gcFinalizer is the target name of the finalizer a delete's propagation
// policy asks the client's garbage collector to process ("" for
// background).
func gcFinalizer(opts *metav1.DeleteOptions) string {
	policy := opts.PropagationPolicy
	if policy == nil && opts.OrphanDependents != nil {
		if *opts.OrphanDependents {
			return mirror.OrphanFinalizer
		}
		return ""
	}
	if policy == nil {
		return ""
	}
	switch *policy {
	case metav1.DeletePropagationOrphan:
		return mirror.OrphanFinalizer
	case metav1.DeletePropagationForeground:
		return mirror.ForegroundFinalizer
	}
	return ""
}

// finalizerPatch is the merge patch that gives an object (current, view
// form) the target finalizer f, conditional on its uid and
// resourceVersion (rv); nil when it is being deleted already (no
// finalizer can be added then) or has f.
func finalizerPatch(current map[string]any, f, rv string) []byte {
	meta, _ := current["metadata"].(map[string]any)
	if meta == nil || meta["deletionTimestamp"] != nil {
		return nil
	}
	list, _ := meta["finalizers"].([]any)
	out := make([]any, 0, len(list)+1)
	for _, x := range list {
		s, _ := x.(string)
		s = mirror.SwapFinalizer(s)
		if s == f {
			return nil
		}
		out = append(out, s)
	}
	out = append(out, f)
	data, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": meta["uid"], "resourceVersion": rv, "finalizers": out,
	}})
	return data
}
