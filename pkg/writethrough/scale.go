package writethrough

import (
	"context"
	"encoding/json"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/store"
)

// getScaleVerb reads the scale subresource of an object at the target:
// the target computes the autoscaling/v1 Scale from its CRD's replica and
// selector paths, which crproxy does not read. Ownership is checked as for
// a write; the Scale read must be of the object checked (its UID), else
// the read runs again, checked at the target.
type getScaleVerb struct{}

func (getScaleVerb) decode(context.Context, *Request) error { return nil }

func (getScaleVerb) rules(*Request) rules { return rules{ownership: true} }

func (getScaleVerb) prepare(_ context.Context, _ *Writer, op *operation) (*Response, error) {
	op.method = http.MethodGet
	return nil, nil
}

func (getScaleVerb) build(context.Context, *Writer, *operation, *store.Object) ([]byte, error) {
	return nil, nil
}

func (getScaleVerb) finish(_ context.Context, _ *Writer, op *operation, resp *Response, err error) (*Response, error) {
	req := op.req
	if err != nil || op.checked == nil || resp.Code != http.StatusOK {
		return resp, err
	}
	var scale struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if json.Unmarshal(resp.Body, &scale) == nil && scale.Metadata.UID == op.checked.UID {
		return resp, nil
	}
	if !req.checkAtTarget {
		return nil, errCheckedReplaced
	}
	return nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
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
