package writethrough

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
)

// A deletecollection the target refuses, carried out one by one, that
// fails after it deleted an object must not say "nothing was written":
// 504, partial, naming how many were deleted.
func TestAFallbackDeleteCollectionFailingLateIsPartial(t *testing.T) {
	var mu sync.Mutex
	deleted := map[string]bool{}
	res := mirroredResource(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		switch {
		case r.Method == http.MethodDelete && name == "myresources":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"cannot deletecollection resource myresources"}`))
		case r.Method == http.MethodGet:
			_, _ = fmt.Fprintf(w, `{"apiVersion":"example.com/v1","kind":"MyResourceList","metadata":{"resourceVersion":"9"},"items":[%s,%s]}`, ownedObject("a"), ownedObject("b"))
		case r.Method == http.MethodDelete:
			mu.Lock()
			deleted[name] = true
			mu.Unlock()
			_, _ = w.Write([]byte(ownedObject(name)))
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	res.Selector = labels.SelectorFromSet(labels.Set(config.Client{Name: "client"}.OwnerLabels()))
	// The target goes away after the first object's delete.
	res.Target = mirror.NewTargetAt(res.Target.ID, res.Target.Host, &http.Client{Transport: unreachableFor{next: http.DefaultTransport, refuse: func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/b")
	}}})
	res.Target.Connection.MarkSynced()
	w := New(Options{Client: config.Client{Name: "client"}})
	_, err := w.Write(context.Background(), &Request{
		Resource: res, Verb: "deletecollection", Namespace: "default",
		Path: "/apis/example.com/v1/namespaces/default/myresources", Query: url.Values{},
	})
	wantStatus(t, err, http.StatusGatewayTimeout, metav1.StatusReasonTimeout, "the outcome of this deletecollection at target default/target is partial: 1 objects were deleted before it failed ")
	if !deleted["a"] || deleted["b"] {
		t.Fatalf("deleted %v, want a only", deleted)
	}
}

func TestRefusesDeleteCollection(t *testing.T) {
	forbidden := func(msg string) *Response {
		body, _ := json.Marshal(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status"}, Status: "Failure", Reason: metav1.StatusReasonForbidden, Code: 403, Message: msg})
		return &Response{Code: http.StatusForbidden, Body: body}
	}
	if !refusesDeleteCollection(forbidden(`myresources.example.com is forbidden: User "loft:vcluster:p-default:client" cannot deletecollection resource "myresources" in API group "example.com" in the namespace "default"`)) {
		t.Error("the RBAC refusal is not recognized")
	}
	if refusesDeleteCollection(forbidden(`unable to create new content in namespace x because it is being terminated`)) {
		t.Error("another 403 is taken for it")
	}
	if refusesDeleteCollection(&Response{Code: 200, Body: []byte(`{}`)}) {
		t.Error("a success is taken for it")
	}
}

func TestRefusalsAreRechecked(t *testing.T) {
	var r refusals
	now := time.Now()
	if r.refused("k", now) {
		t.Fatal("refused before any refusal")
	}
	r.remember("k", now)
	if !r.refused("k", now.Add(time.Minute)) || r.refused("other", now) {
		t.Fatal("not remembered per key")
	}
	if r.refused("k", now.Add(deleteCollectionRecheck)) {
		t.Fatal("never rechecked")
	}
}

func TestListQuery(t *testing.T) {
	q, limited := listQuery(url.Values{"labelSelector": {"a=b,o=x"}, "fieldSelector": {"metadata.name=n"}, "resourceVersion": {"0"}, "gracePeriodSeconds": {"0"}})
	if limited || q.Get("labelSelector") != "a=b,o=x" || q.Get("fieldSelector") != "metadata.name=n" || q.Get("resourceVersion") != "" || q.Get("gracePeriodSeconds") != "" || q.Get("limit") == "" {
		t.Errorf("query = %v", q)
	}
	if q, limited = listQuery(url.Values{"limit": {"2"}}); !limited || q.Get("limit") != "2" {
		t.Errorf("limit: %v %v", q, limited)
	}
}
