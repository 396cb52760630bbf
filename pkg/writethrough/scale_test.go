package writethrough

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// TestScaleJSONPatch: the caller's operations go as they came, after a
// test of the UID when there is one; a body that is no JSON patch is 400.
func TestScaleJSONPatch(t *testing.T) {
	ops := `[{"op":"replace","path":"/spec/replicas","value":3}]`
	got, err := scaleJSONPatch([]byte(ops), "u-1")
	if want := `[{"op":"test","path":"/metadata/uid","value":"u-1"},{"op":"replace","path":"/spec/replicas","value":3}]`; err != nil || string(got) != want {
		t.Fatalf("with a UID: %s %v, want %s", got, err, want)
	}
	if got, err := scaleJSONPatch([]byte(ops), ""); err != nil || string(got) != ops {
		t.Fatalf("without a UID: %s %v", got, err)
	}
	if _, err := scaleJSONPatch([]byte(`{"spec":{}}`), "u-1"); !apierrors.IsBadRequest(err) {
		t.Fatalf("a merge patch as a JSON patch: %v, want 400", err)
	}
}

// TestDecodeScaleBody: a scale update's body is an autoscaling/v1 Scale,
// not the resource's kind, and the other way round.
func TestDecodeScaleBody(t *testing.T) {
	res := mirror.NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"},
		metav1.APIResource{Name: "things", Namespaced: true, Kind: "Thing"})
	scale := `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"a","namespace":"ns","resourceVersion":"5"},"spec":{"replicas":2}}`
	thing := `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"a","namespace":"ns"}}`
	for _, c := range []struct {
		subresource, body string
		ok                bool
	}{
		{"scale", scale, true},
		{"scale", thing, false},
		{"status", thing, true},
		{"status", scale, false},
		{"", scale, false},
	} {
		req := &Request{Resource: res, Verb: "update", Namespace: "ns", Name: "a", Subresource: c.subresource, ContentType: "application/json", Body: []byte(c.body)}
		_, err := decodeObject(context.Background(), req)
		if (err == nil) != c.ok {
			t.Errorf("subresource %q, body %s: %v, want ok %v", c.subresource, c.body, err, c.ok)
		}
	}
}
