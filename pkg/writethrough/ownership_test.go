package writethrough

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crproxy/crproxy/pkg/config"
)

// A write whose ownership lookup at the target loses its connection was
// never sent: 503 with Retry-After, saying nothing was written (not 504,
// "the outcome is unknown"), and the target gets no write.
func TestALostLookupSaysNothingWasWritten(t *testing.T) {
	var writes, gets atomic.Int32
	res := mirroredResource(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		if r.Method != http.MethodGet {
			writes.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		// Read the GET, then hang up without an answer.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	res.Target.Connection.MarkSynced()
	w := New(Options{Client: config.Client{Name: "client"}})
	// The mirror does not hold default/x: the update looks it up at the
	// target.
	_, err := w.Write(context.Background(), &Request{
		Resource: res, Verb: "update", Namespace: "default", Name: "x",
		Path: "/apis/example.com/v1/namespaces/default/myresources/x", Query: url.Values{},
		ContentType: "application/json", Body: []byte(strings.Replace(fakeObject, `"resourceVersion":"5",`, "", 1)),
	})
	wantStatus(t, err, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "target default/target is unreachable, nothing was written: ")
	if d := err.(*apierrors.StatusError).ErrStatus.Details; d == nil || d.RetryAfterSeconds == 0 {
		t.Fatalf("got %v, want Retry-After", err)
	}
	if gets.Load() == 0 {
		t.Fatal("the lookup never reached the target")
	}
	if n := writes.Load(); n != 0 {
		t.Fatalf("the target received %d writes", n)
	}
}

func TestLostUIDPrecondition(t *testing.T) {
	uid := &Response{Code: 409, Body: []byte(`{"kind":"Status","message":"Operation cannot be fulfilled on myresources.example.com \"a\": Precondition failed: UID in precondition: 1, UID in object meta: 2"}`)}
	rv := &Response{Code: 409, Body: []byte(`{"kind":"Status","message":"Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: 2"}`)}
	if !lostUIDPrecondition(uid) || lostUIDPrecondition(rv) {
		t.Fail()
	}
}
