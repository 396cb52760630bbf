package mirror

import (
	"encoding/json"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/store"
)

// TargetObject reads the target's answer (code, body) to a GET of the
// object name of r: the object in the client's view, nil when the target
// holds none, or an error when the answer does not tell.
//
// Only a 404 whose Status names the object says it is absent. A 403 does
// not: a target that has just started denies every identity until its
// RBAC caches fill, and a denial says nothing about the object. Nor does
// a 404 of the resource's path (a CRD the target does not serve yet); that
// one is a 503. A consistency barrier is crproxy's, absent to callers.
func (r *Resource) TargetObject(code int, body []byte, name string) (*store.Object, error) {
	return r.targetObject(code, ViewJSON(body, r.Target.Passthrough), name)
}

// targetObject is TargetObject of a body in the client's view already.
func (r *Resource) targetObject(code int, body []byte, name string) (*store.Object, error) {
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		if err := TargetStatusError(code, body); namesObject(err, r.GVR.GroupResource(), name) {
			return nil, nil
		}
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("target %s does not serve %s", r.Target.ID, r.GVR.GroupResource()))
	default:
		return nil, TargetStatusError(code, body)
	}
	o, err := store.NewObject(body)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("the target answered a GET of %s %q with an object crproxy cannot read: %w", r.GVR.GroupResource(), name, err))
	}
	if IsBarrier(o.Labels) {
		return nil, nil
	}
	return o, nil
}

// TargetStatusError is the error of a target's answer that is not a
// success: its Status when it sent one, else a generic error of its code
// and body.
func TargetStatusError(code int, body []byte) error {
	var status metav1.Status
	if err := json.Unmarshal(body, &status); err != nil || status.Kind != "Status" {
		return apierrors.NewGenericServerResponse(code, "", schema.GroupResource{}, "", string(body), 0, false)
	}
	return &apierrors.StatusError{ErrStatus: status}
}

// namesObject tells a NotFound of the object name of gr from one of
// anything else (a path the target does not serve names no object).
func namesObject(err error, gr schema.GroupResource, name string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Reason != metav1.StatusReasonNotFound {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Name == name && d.Kind == gr.Resource
}
