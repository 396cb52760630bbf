package writethrough

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
)

// unreachableFor makes the target's HTTP client fail to dial for the
// requests refuse picks, as when the target goes away between two
// requests of one write.
type unreachableFor struct {
	next   http.RoundTripper
	refuse func(*http.Request) bool
}

func (u unreachableFor) RoundTrip(r *http.Request) (*http.Response, error) {
	if u.refuse(r) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return u.next.RoundTrip(r)
}

// deleteForeground deletes default/x of res, propagationPolicy Foreground,
// as client "client", with the target up.
func deleteForeground(res *mirror.Resource) error {
	res.Target.Connection.MarkSynced()
	w := New(Options{Client: config.Client{Name: "client"}})
	_, err := w.Write(context.Background(), &Request{
		Resource: res, Verb: "delete", Namespace: "default", Name: "x",
		Path: "/apis/example.com/v1/namespaces/default/myresources/x", Query: url.Values{"propagationPolicy": {"Foreground"}},
	})
	return err
}

// ownedObject is fakeObject named name.
func ownedObject(name string) string {
	return strings.Replace(strings.Replace(fakeObject, `"name":"x"`, `"name":"`+name+`"`, 1), `"uid":"u1"`, `"uid":"u-`+name+`"`, 1)
}

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

// A Foreground delete whose finalizer was added but whose DELETE never
// reached the target, and whose finalizer could not be taken back, must
// not say "nothing was written": the finalizer stays, 504 says so.
func TestAFinalizerLeftBehindIsNotNothingWritten(t *testing.T) {
	var patches atomic.Int32
	res := mirroredResource(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPatch {
			patches.Add(1)
			_, _ = w.Write([]byte(strings.Replace(fakeObject, `"resourceVersion":"5"`, `"resourceVersion":"6"`, 1)))
			return
		}
		w.WriteHeader(http.StatusMethodNotAllowed)
	}), fakeObject)
	// After the finalizer patch, the target cannot be reached.
	res.Target = mirror.NewTargetAt(res.Target.ID, res.Target.Host, &http.Client{Transport: unreachableFor{next: http.DefaultTransport, refuse: func(r *http.Request) bool { return patches.Load() > 0 }}})
	err := deleteForeground(res)
	wantStatus(t, err, http.StatusGatewayTimeout, metav1.StatusReasonTimeout, "the delete did not reach target default/target, but the finalizer crproxy.dev/foreground-deletion it added first could not be taken back")
	if n := patches.Load(); n != 1 {
		t.Fatalf("the target got %d patches, want the finalizer's", n)
	}
}
