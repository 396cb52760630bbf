package mirror

import (
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestTargetObjectTellsAbsentOnlyFromANotFoundOfTheObject: a GET at the
// target proves an object absent only by a 404 naming it; a 403 (a target
// whose RBAC caches have not filled) and a 404 of the resource's path (a
// CRD not served yet) say nothing and must not become "absent".
func TestTargetObjectTellsAbsentOnlyFromANotFoundOfTheObject(t *testing.T) {
	r := &Resource{GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}, Target: &Target{ID: "p/t"}}
	obj := `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"x","namespace":"default","uid":"u","resourceVersion":"5"}}`
	barrier := `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"x","namespace":"default","uid":"u","resourceVersion":"5","labels":{"` + BarrierLabel + `":"h"}}}`
	cases := []struct {
		name   string
		code   int
		body   string
		found  bool
		reason metav1.StatusReason // "" with found unset: absent
	}{
		{"the object", http.StatusOK, obj, true, ""},
		{"a barrier is crproxy's", http.StatusOK, barrier, false, ""},
		{"404 of the object", http.StatusNotFound, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","details":{"name":"x","group":"example.com","kind":"things"},"code":404}`, false, ""},
		{"404 of another object", http.StatusNotFound, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","details":{"name":"y","group":"example.com","kind":"things"},"code":404}`, false, metav1.StatusReasonServiceUnavailable},
		{"404 of the path", http.StatusNotFound, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}`, false, metav1.StatusReasonServiceUnavailable},
		{"404 without a Status", http.StatusNotFound, `404 page not found`, false, metav1.StatusReasonServiceUnavailable},
		{"403 of a target starting", http.StatusForbidden, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","details":{"name":"x","group":"example.com","kind":"things"},"code":403}`, false, metav1.StatusReasonForbidden},
		{"500", http.StatusInternalServerError, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500}`, false, metav1.StatusReasonInternalError},
		{"unreadable object", http.StatusOK, `{`, false, metav1.StatusReasonInternalError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := r.TargetObject(c.code, []byte(c.body), "x")
			if got := apierrors.ReasonForError(err); got != c.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, c.reason)
			}
			if (o != nil) != c.found {
				t.Fatalf("object %v, want found=%v", o, c.found)
			}
		})
	}
}
