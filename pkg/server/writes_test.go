package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/writethrough"
)

// TestWriteBodyLimits: a body past a limit is answered with the
// kube-apiserver's Status before the write-through is asked (the resource
// has no target: reaching it would panic).
func TestWriteBodyLimits(t *testing.T) {
	h := &apiHandler{writer: writethrough.New(writethrough.Options{})}
	res := mirror.NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "myresources"},
		metav1.APIResource{Name: "myresources", Namespaced: true, Kind: "MyResource"})
	const collection = "/apis/example.com/v1/namespaces/default/myresources"
	for _, c := range []struct {
		name, method, path, contentType string
		info                            request.RequestInfo
		body                            []byte
		code                            int
		reason                          metav1.StatusReason
		message                         string
	}{
		{"create over 3 MiB", http.MethodPost, collection, "application/json",
			request.RequestInfo{Verb: "create", Namespace: "default", Resource: "myresources"},
			append([]byte(`{"spec":"`), bytes.Repeat([]byte("x"), writethrough.MaxBodyBytes)...), 413, metav1.StatusReasonRequestEntityTooLarge,
			"Request entity too large: limit is 3145728"},
		{"JSON patch over 3 MiB", http.MethodPatch, collection + "/x", "application/json-patch+json",
			request.RequestInfo{Verb: "patch", Namespace: "default", Resource: "myresources", Name: "x"},
			bytes.Repeat([]byte(" "), writethrough.MaxBodyBytes+1), 413, metav1.StatusReasonRequestEntityTooLarge,
			"Request entity too large: limit is 3145728"},
		{"apply configuration nested too deep", http.MethodPatch, collection + "/x", "application/apply-patch+yaml",
			request.RequestInfo{Verb: "patch", Namespace: "default", Resource: "myresources", Name: "x"},
			[]byte(strings.Repeat("[", 10001) + strings.Repeat("]", 10001)), 400, metav1.StatusReasonBadRequest,
			"error decoding YAML: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, bytes.NewReader(c.body))
			r.Header.Set("Content-Type", c.contentType)
			rec := httptest.NewRecorder()
			h.write(rec, r, res, &c.info)
			var s metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s.Kind != "Status" {
				t.Fatalf("answer %d is not a Status: %v\n%.300s", rec.Code, err, rec.Body.Bytes())
			}
			if rec.Code != c.code || int(s.Code) != c.code || s.Reason != c.reason || !strings.HasPrefix(s.Message, c.message) {
				t.Fatalf("got %d (Status %d %s %q), want %d %s %q", rec.Code, s.Code, s.Reason, s.Message, c.code, c.reason, c.message)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
