package writethrough

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/store"
)

// getScale reads the scale subresource of an object at the target: the
// target computes the autoscaling/v1 Scale from its CRD's replica and
// selector paths, which crproxy does not read. Ownership is checked as for
// a write; the Scale read must be of the object checked (its UID), else
// the read runs again, checked at the target.
func (w *Writer) getScale(ctx context.Context, req *Request) (*Response, error) {
	checked, err := w.checkOwnership(ctx, req, false)
	if err != nil {
		return nil, err
	}
	resp, err := w.send(ctx, req, http.MethodGet, req.Query, "", nil)
	if err != nil || checked == nil || resp.Code != http.StatusOK {
		return resp, err
	}
	var scale struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if json.Unmarshal(resp.Body, &scale) == nil && scale.Metadata.UID == checked.UID {
		return resp, nil
	}
	if !req.checkAtTarget {
		return nil, errCheckedReplaced
	}
	return nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
}

// updateScale replaces the Scale of an object. The target takes from it
// spec.replicas and, as its only precondition, the resourceVersion (not
// the UID): an update without one is made conditional on the version the
// ownership check saw, retried on a conflict while the object is still
// this client's, so it cannot land on an object created anew since.
func (w *Writer) updateScale(ctx context.Context, req *Request, scale map[string]any, checked *store.Object) (*Response, error) {
	meta, err := metadataOf(scale)
	if err != nil {
		return nil, err
	}
	_, has := meta["resourceVersion"]
	conditional := !has && checked != nil
	resp, _, err := w.retryOnConflict(ctx, req, checked, checked, conditional, func(current *store.Object) (*Response, error) {
		if conditional {
			meta["resourceVersion"] = fmt.Sprint(current.ResourceVersion)
		}
		body, err := json.Marshal(scale)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		return w.send(ctx, req, http.MethodPut, req.Query, "application/json", body)
	})
	if err != nil {
		return nil, err
	}
	return w.maskLostPrecondition(ctx, req, checked, resp)
}

// scaleJSONPatch is a JSON patch of a Scale as sent to the target: the
// caller's operations, after a test of the object's UID when uid is set
// (the Scale carries the object's UID, so the patch cannot land on an
// object created anew since the ownership check).
func scaleJSONPatch(body []byte, uid string) ([]byte, error) {
	if _, err := decodeJSONPatch(body); err != nil {
		return nil, err
	}
	var ops []json.RawMessage
	if err := json.Unmarshal(body, &ops); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if uid == "" {
		return body, nil
	}
	out := make([]any, 0, len(ops)+1)
	out = append(out, jsonPatchOperation{"op": "test", "path": "/metadata/uid", "value": uid})
	for _, op := range ops {
		out = append(out, op)
	}
	return json.Marshal(out)
}
