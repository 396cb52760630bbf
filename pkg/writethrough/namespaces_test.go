package writethrough

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
)

// The namespace step by verb, as the NamespaceLifecycle admission plugin
// rules a native resource: a write into a namespace the client cluster
// lacks is 404 and a create into a terminating one 403, nothing sent;
// an update in a terminating namespace and a delete anywhere pass; a
// write that may create makes the namespace at the target first.
func TestNamespaceRules(t *testing.T) {
	for _, c := range []struct {
		verb, namespace string
		code            int
		reason          metav1.StatusReason
		sent            string // the requests that reached the target
	}{
		{"create", "gone", 404, metav1.StatusReasonNotFound, ""},
		{"update", "gone", 404, metav1.StatusReasonNotFound, ""},
		{"merge", "gone", 404, metav1.StatusReasonNotFound, ""},
		{"apply", "gone", 404, metav1.StatusReasonNotFound, ""},
		{"delete", "gone", 200, "", "[DELETE /apis/example.com/v1/namespaces/gone/myresources/mine]"},
		{"create", "ending", 403, metav1.StatusReasonForbidden, ""},
		{"apply", "ending", 403, metav1.StatusReasonForbidden, ""},
		{"update", "ending", 200, "", "[PUT /apis/example.com/v1/namespaces/ending/myresources/mine]"},
		{"create", "fresh", 201, "", "[GET /api/v1/namespaces/fresh POST /api/v1/namespaces POST /apis/example.com/v1/namespaces/fresh/myresources]"},
		{"create", "known", 201, "", "[GET /api/v1/namespaces/known POST /apis/example.com/v1/namespaces/known/myresources]"},
	} {
		t.Run(c.verb+" in "+c.namespace, func(t *testing.T) {
			// The client cluster: gone was deleted there (the target still
			// has it and an object in it), ending is terminating, fresh
			// is new to the target, known is at both.
			client := kubefake.NewClientset(
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ending"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}},
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "known"}},
			)
			target := faketarget.New(t)
			for _, ns := range []string{"gone", "ending", "known"} {
				target.AddNamespace(ns)
				target.Add(strings.Replace(mineObject, `"default"`, `"`+ns+`"`, 1))
			}
			res := target.Resource(config.AccessAll)
			w := New(Options{Client: faketarget.Client, Namespaces: NewNamespaces(client)})
			name := "mine"
			if c.verb == "create" {
				name = "new"
			}
			req := verbRequest(c.verb, name)
			req.Resource, req.Namespace = res, c.namespace
			req.Path = strings.Replace(req.Path, "/namespaces/default/", "/namespaces/"+c.namespace+"/", 1)
			resp, err := w.Write(context.Background(), req)
			if got := codeOf(resp, err); got != c.code {
				t.Fatalf("answer %d (%v), want %d", got, err, c.code)
			}
			if c.reason != "" && apierrors.ReasonForError(err) != c.reason {
				t.Errorf("reason %q (%v), want %q", apierrors.ReasonForError(err), err, c.reason)
			}
			var sent []string
			for _, r := range target.Requests() {
				sent = append(sent, r.String())
			}
			want := c.sent
			if want == "" {
				want = "[]"
			}
			if got := fmt.Sprint(sent); got != want {
				t.Errorf("the target received %s, want %s", got, want)
			}
			if c.namespace == "fresh" && !target.HasNamespace("fresh") {
				t.Error("the namespace was not created at the target")
			}
		})
	}
}

func TestNamespaceMissingTellsANamespace404FromAnObject404(t *testing.T) {
	ns := &Response{Code: 404, Body: []byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"namespaces \"gone\" not found","reason":"NotFound","details":{"name":"gone","kind":"namespaces"},"code":404}`)}
	obj := &Response{Code: 404, Body: []byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"myresources.example.com \"x\" not found","reason":"NotFound","details":{"name":"x","group":"example.com","kind":"myresources"},"code":404}`)}
	if !namespaceMissing(ns, "gone") {
		t.Error("a namespace 404 was not recognized")
	}
	if namespaceMissing(obj, "gone") || namespaceMissing(ns, "other") {
		t.Error("an object 404, or another namespace's, was taken for this namespace missing")
	}
}
