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
	"github.com/crproxy/crproxy/pkg/mirror"
)

func TestDeleteOptionsFromJSONYAMLOrQuery(t *testing.T) {
	for _, req := range []*Request{
		{Body: []byte(`{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground","dryRun":["All"]}`), ContentType: "application/json"},
		{Body: []byte("propagationPolicy: Foreground\ndryRun: [All]\n"), ContentType: "application/yaml"},
		{Query: url.Values{"propagationPolicy": {"Foreground"}, "dryRun": {"All"}}},
	} {
		opts, err := deleteOptions(req)
		if err != nil {
			t.Fatal(err)
		}
		if opts.PropagationPolicy == nil || *opts.PropagationPolicy != "Foreground" || len(opts.DryRun) != 1 {
			t.Errorf("%q %v: got %+v", req.Body, req.Query, opts)
		}
	}
	if _, err := deleteOptions(&Request{Body: []byte(`{"propagationPolicy":`)}); !apierrors.IsBadRequest(err) {
		t.Errorf("malformed DeleteOptions: %v, want 400", err)
	}
}

// A delete that needs a GC finalizer first, whose finalizer patch meets a
// conflict and whose re-read is lost, must not answer 404 (to many
// controllers a delete's success): it is 503, nothing was written, and no
// DELETE reaches the target.
func TestALostReReadIsNotAnObjectGone(t *testing.T) {
	var deletes atomic.Int32
	res := mirroredResource(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPatch:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409}`))
		case http.MethodGet:
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		default:
			deletes.Add(1)
			w.WriteHeader(http.StatusOK)
		}
	}), fakeObject)
	err := deleteForeground(res)
	wantStatus(t, err, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "target default/target is unreachable, nothing was written: ")
	if n := deletes.Load(); n != 0 {
		t.Fatalf("the target received %d deletes", n)
	}
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
