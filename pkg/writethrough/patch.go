package writethrough

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	kjson "sigs.k8s.io/json"

	"github.com/crproxy/crproxy/pkg/store"
)

// patchMediaTypes are the patch types a custom resource accepts, in the
// kube-apiserver's order.
var patchMediaTypes = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.ApplyYAMLPatchType)}

// createOnlyResourceVersion is a resourceVersion no object has: etcd's
// first write is revision 2.
const createOnlyResourceVersion = "1"

// patchVerb patches an object, its status or its Scale, with a JSON patch,
// a merge patch or a server-side apply, each stamped to keep the owner
// labels and to hold only on the checked object:
//
//   - a merge patch or an apply configuration gets the owner labels, the
//     checked UID, and ownerReferences, finalizers and crproxy annotations
//     in the target's form; one that sets ownerReferences (and a status
//     patch) is made conditional on the version read;
//   - a JSON patch gets a test of the checked UID and operations that put
//     the owner labels back; one that touches ownerReferences, finalizers
//     or annotations is applied here to the view and sent as the
//     equivalent merge patch of the target form, conditional on the
//     version it was applied to (the verb stays patch);
//   - an apply that creates, in owned mode, is sent conditional on the
//     object not existing, so it cannot land on an object another client
//     created since the check.
type patchVerb struct {
	noFinish
	patchType types.PatchType
	// doc is a merge patch or apply configuration, decoded.
	doc map[string]any
	// local says a JSON patch touches ownership: applied here, sent as a
	// merge patch.
	local bool
}

func (v *patchVerb) decode(ctx context.Context, req *Request) error {
	v.patchType = types.PatchType(req.ContentType)
	switch v.patchType {
	case types.JSONPatchType:
		if _, err := decodeJSONPatch(req.Body); err != nil {
			return err
		}
		v.local = req.Subresource == "" && jsonPatchTouchesOwnership(req.Body)
		return nil
	case types.MergePatchType, types.ApplyYAMLPatchType:
	default:
		return negotiation.NewUnsupportedMediaTypeError(patchMediaTypes)
	}
	doc, err := decodeDocument(ctx, req.Body, v.patchType == types.ApplyYAMLPatchType, req.Query.Get("fieldValidation"))
	if err != nil {
		return err
	}
	patch, ok := doc.(map[string]any)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("the patch is not a JSON object: %s", summarize(req.Body)))
	}
	v.doc = patch
	return nil
}

// applies reports whether req is a server-side apply of the object, which
// may create it.
func (v *patchVerb) applies(req *Request) bool {
	return v.patchType == types.ApplyYAMLPatchType && req.Subresource == ""
}

func (v *patchVerb) rules(req *Request) rules {
	return rules{namespace: true, ownership: true, mayCreate: v.applies(req)}
}

func (v *patchVerb) prepare(ctx context.Context, w *Writer, op *operation) (*Response, error) {
	req := op.req
	gr := req.Resource.GVR.GroupResource()
	op.method, op.contentType = http.MethodPatch, req.ContentType
	var err error
	switch {
	case v.local:
		if op.current, err = w.replaced(ctx, op); err != nil {
			return nil, err
		}
		if op.current == nil {
			return nil, apierrors.NewNotFound(gr, req.Name)
		}
		op.contentType, op.conditional = string(types.MergePatchType), true
		op.body, err = v.build(ctx, w, op, op.current)
		if apierrors.IsInvalid(err) || isUnprocessable(err) {
			// The mirror may be behind the target: try its current state.
			if fresh, _ := w.refresh(ctx, req, op.checked); fresh != nil {
				op.current = fresh
				op.body, err = v.build(ctx, w, op, fresh)
			}
		}
	case v.patchType == types.JSONPatchType:
		if op.current = op.checked; op.current == nil {
			if op.current, err = w.lookup(ctx, req, false); err != nil {
				return nil, err
			}
			if op.current == nil {
				return nil, apierrors.NewNotFound(gr, req.Name)
			}
		}
		op.body, err = v.build(ctx, w, op, op.current)
		if apierrors.IsInvalid(err) && op.checked != nil && !req.scale() {
			// The mirror may be behind the target: try its current state.
			if fresh, lookupErr := w.lookup(ctx, req, true); lookupErr == nil && fresh != nil {
				op.current = fresh
				op.body, err = v.build(ctx, w, op, fresh)
			}
		}
	default:
		op.current = op.checked
		if req.Subresource == "" {
			if op.current, err = w.replaced(ctx, op); err != nil {
				return nil, err
			}
		}
		op.createOnly = v.applies(req) && op.checked == nil && owned(req)
		op.body, op.conditional, err = w.stampDocumentPatch(req, v.patchType, deepCopyJSON(v.doc), op.current, op.uid(), op.createOnly)
	}
	return nil, err
}

func (v *patchVerb) build(_ context.Context, w *Writer, op *operation, current *store.Object) ([]byte, error) {
	req := op.req
	switch {
	case v.local:
		return w.jsonPatchAsMergePatch(req, current, op.uid())
	case v.patchType == types.JSONPatchType && req.scale():
		// The patch applies to the Scale the target computes, not to the
		// object: only its UID, which the Scale carries, is a
		// precondition to add.
		return scaleJSONPatch(req.Body, op.uid())
	case v.patchType == types.JSONPatchType:
		return w.labelsFor(current).stampJSONPatch(req.Resource.GVR.GroupResource(), req.Name, req.Body, current.JSON, op.uid())
	}
	body, _, err := w.stampDocumentPatch(req, v.patchType, deepCopyJSON(v.doc), current, op.uid(), op.createOnly)
	return body, err
}

// jsonPatchAsMergePatch applies a JSON patch that touches ownerReferences,
// finalizers or annotations to current's view, and returns the equivalent
// merge patch of the target form, owner labels kept and the UID, when set,
// a condition too.
func (w *Writer) jsonPatchAsMergePatch(req *Request, current *store.Object, uid string) ([]byte, error) {
	stamp := func(obj map[string]any) error {
		if err := w.labelsFor(current).stampObject(obj); err != nil {
			return err
		}
		if uid != "" {
			meta, _ := metadataOf(obj)
			meta["uid"] = uid
		}
		return nil
	}
	body, err := translator(req).jsonPatchAsMergePatch(req.Body, current.JSON, stamp)
	if err != nil || uid == "" {
		return body, err
	}
	var patch map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &patch); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	meta, _ := metadataOf(patch)
	meta["uid"] = uid
	return json.Marshal(patch)
}

// isUnprocessable reports a 422 Status error.
func isUnprocessable(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && status.Status().Code == http.StatusUnprocessableEntity
}

// stampDocumentPatch stamps the owner labels (and the checked UID) on a
// merge patch or an apply configuration (patch, decoded, changed in
// place), and turns its ownerReferences, finalizers and crproxy
// annotations into the target form (current is the object as last seen,
// nil for a status write or a new object). It reports whether the patch
// was made conditional on current's resourceVersion (a merge patch that
// sets ownerReferences, a status patch). createOnly makes an apply
// conditional on the object not existing (createOnlyResourceVersion).
func (w *Writer) stampDocumentPatch(req *Request, patchType types.PatchType, patch map[string]any, current *store.Object, uid string, createOnly bool) ([]byte, bool, error) {
	apply := patchType == types.ApplyYAMLPatchType
	var err error
	switch {
	case req.scale():
		// A Scale's metadata is not the object's: no labels to keep.
	case apply:
		err = w.labelsFor(current).stampObject(patch)
	default:
		if current == nil {
			if o, _, ok := req.Resource.Cache.Get(req.Namespace, req.Name); ok {
				current = o
			}
		}
		labels := map[string]string(nil)
		if current != nil {
			labels = current.Labels
		}
		err = w.labelsFor(current).stampMergePatch(patch, labels)
	}
	if err != nil {
		return nil, false, err
	}
	meta, err := metadataOf(patch)
	if err != nil {
		return nil, false, err
	}
	if uid != "" {
		meta["uid"] = uid
	}
	conditional := false
	if _, has := meta["resourceVersion"]; req.Subresource != "" && uid != "" && current != nil && !has {
		// A status write: the target resets its metadata, UID included,
		// before a UID could act as a precondition, but compares the
		// resourceVersion first. So the write is conditional on the
		// version the ownership check saw, retried on a conflict while
		// the object is still this client's.
		meta["resourceVersion"] = fmt.Sprint(current.ResourceVersion)
		conditional = true
	}
	if req.Subresource == "" {
		currentDoc := decodeJSON(current)
		if apply {
			err = translator(req).applyConfiguration(meta, currentDoc)
		} else {
			var touched bool
			touched, err = translator(req).mergePatch(meta, currentDoc)
			if _, has := meta["resourceVersion"]; touched && !has && current != nil {
				meta["resourceVersion"] = fmt.Sprint(current.ResourceVersion)
				conditional = true
			}
		}
		if err != nil {
			return nil, false, err
		}
	}
	if createOnly {
		meta["resourceVersion"] = createOnlyResourceVersion
	}
	body, err := json.Marshal(patch)
	return body, conditional, err
}
