package writethrough

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/store"
)

// updateVerb replaces an object, its status or its Scale. The owner labels
// stay the replaced object's; the checked UID is a precondition; an update
// of the object without a resourceVersion is made conditional on the
// version whose target-only ownerReferences it puts back, and a Scale
// update without one on the checked version (the Scale's only
// precondition).
type updateVerb struct {
	noFinish
	obj map[string]any
}

func (v *updateVerb) decode(ctx context.Context, req *Request) (err error) {
	v.obj, err = decodeObject(ctx, req)
	return err
}

func (v *updateVerb) rules(*Request) rules {
	return rules{namespace: true, ownership: true}
}

func (v *updateVerb) prepare(ctx context.Context, w *Writer, op *operation) (*Response, error) {
	req := op.req
	op.method, op.contentType = http.MethodPut, "application/json"
	// The object replaced, for its owner labels and target-only
	// ownerReferences; a status write's metadata is ignored by the
	// target, so it needs no lookup.
	op.current = op.checked
	if req.Subresource == "" {
		var err error
		if op.current, err = w.replaced(ctx, op); err != nil {
			return nil, err
		}
	}
	meta, _ := metadataOf(v.obj)
	_, hasVersion := meta["resourceVersion"]
	switch {
	case req.scale():
		// A Scale's metadata is not the object's: no labels to keep, and
		// the target ignores its UID.
		op.conditional = !hasVersion && op.checked != nil
	default:
		if err := w.labelsFor(op.current).stampObject(v.obj); err != nil {
			return nil, err
		}
		if err := uidPrecondition(req, meta, op.checked); err != nil {
			return nil, err
		}
		// An update without a resourceVersion replaces whatever the
		// target has: crproxy makes it conditional on the version whose
		// target-only ownerReferences it puts back. (A status write: the
		// target ignores metadata there.)
		rv, _ := meta["resourceVersion"].(string)
		op.conditional = req.Subresource == "" && rv == "" && op.current != nil
	}
	var err error
	op.body, err = v.build(ctx, w, op, op.current)
	return nil, err
}

// uidPrecondition makes the checked object's UID a precondition of a write
// of the whole object (meta its metadata): it cannot land on an object
// recreated since the check. A UID the caller set must be the object's:
// another one is refused here, as the target would, before anything
// reaches it.
func uidPrecondition(req *Request, meta map[string]any, checked *store.Object) error {
	if checked == nil {
		return nil
	}
	switch uid, _ := meta["uid"].(string); uid {
	case "":
		meta["uid"] = checked.UID
	case checked.UID:
	default:
		return errUIDPrecondition(req, uid, checked.UID)
	}
	return nil
}

// errUIDPrecondition is the target's 409 for a UID precondition the
// object does not meet, answered before anything reaches it.
func errUIDPrecondition(req *Request, want, have string) error {
	return apierrors.NewConflict(req.Resource.GVR.GroupResource(), req.Name,
		fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", want, have))
}

func (v *updateVerb) build(_ context.Context, _ *Writer, op *operation, current *store.Object) ([]byte, error) {
	req := op.req
	sent := v.obj
	if req.Subresource == "" {
		// The target-only ownerReferences are current's: each attempt
		// starts from the caller's object.
		sent = deepCopyJSON(v.obj)
		meta, _ := metadataOf(sent)
		if err := translator(req).wholeObject(meta, targetOnlyOf(decodeJSON(current))); err != nil {
			return nil, err
		}
	}
	if op.conditional {
		meta, _ := metadataOf(sent)
		meta["resourceVersion"] = fmt.Sprint(current.ResourceVersion)
	}
	body, err := json.Marshal(sent)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return body, nil
}
