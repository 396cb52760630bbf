package writethrough

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// testTarget is a target at addr with a plain HTTP client.
func testTarget(t *testing.T, addr string) *mirror.Target {
	host, _ := url.Parse("http://" + addr)
	return mirror.NewTargetAt("default/target", host, &http.Client{})
}

func TestTransportFailuresTellWhetherAnythingWasWritten(t *testing.T) {
	w := New(Options{})
	// Nothing listens: the dial fails, nothing was written: 503.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := l.Addr().String()
	l.Close()
	_, err := w.do(context.Background(), testTarget(t, closedAddr), "", targetRequest{method: http.MethodPost, path: "/x", query: url.Values{}, body: []byte("{}")})
	if !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("dial refused: %v, want 503", err)
	}

	// A server that reads the request and hangs up without answering: the
	// outcome is unknown: 504.
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	_, err = w.do(context.Background(), testTarget(t, l.Addr().String()), "", targetRequest{method: http.MethodPost, path: "/x", query: url.Values{}, body: []byte("{}")})
	if !apierrors.IsTimeout(err) {
		t.Fatalf("connection lost after sending: %v, want 504", err)
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

// A target reached below a path (a platform's proxy URL) gets its writes
// below that path too, as its reads through client-go.
func TestWritesKeepTheTargetURLPath(t *testing.T) {
	paths := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	target := testTarget(t, strings.TrimPrefix(srv.URL, "http://"))
	target.Host.Path = "/kubernetes/project/p/virtualcluster/x/"
	resp, err := New(Options{}).do(context.Background(), target, "", targetRequest{method: http.MethodPost, path: "/apis/example.com/v1/namespaces/ns/myresources", query: url.Values{}, body: []byte("{}")})
	if err != nil || resp.Code != http.StatusCreated {
		t.Fatalf("write: %v %v", resp, err)
	}
	if got, want := <-paths, "/kubernetes/project/p/virtualcluster/x/apis/example.com/v1/namespaces/ns/myresources"; got != want {
		t.Errorf("the target got %s, want %s", got, want)
	}
}

// A caller that gives up does not make the target look down: 40
// abandoned writes leave it Connected, and the next write goes through.
func TestAbandonedWritesAreNotTargetFailures(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hang") != "" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	defer close(release)
	target := testTarget(t, strings.TrimPrefix(srv.URL, "http://"))
	target.Connection.MarkSynced()
	w := New(Options{})
	for range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := w.do(ctx, target, "", targetRequest{method: http.MethodPost, path: "/x", query: url.Values{"hang": {"1"}}, body: []byte("{}")})
		cancel()
		if !apierrors.IsTimeout(err) || !strings.Contains(err.Error(), "the request ended before target default/target answered; the outcome of this write is unknown") {
			t.Fatalf("an abandoned write: %v, want 504 saying the outcome is unknown", err)
		}
	}
	// Given up before it was sent: nothing was written, and the target is
	// not called unreachable.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.do(gone, target, "", targetRequest{method: http.MethodPost, path: "/x", query: url.Values{}, body: []byte("{}")})
	if !apierrors.IsTimeout(err) || !strings.Contains(err.Error(), "nothing was written") || strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a write given up before it was sent: %v", err)
	}
	if st := target.Connection.Status(); st.State != reconnect.Connected {
		t.Fatalf("after abandoned writes the target is %s, want Connected", st.State)
	}
	if _, down := target.Connection.CheckReachable(context.Background()); down {
		t.Fatal("after abandoned writes the target counts as unreachable")
	}
	resp, err := w.do(context.Background(), target, "", targetRequest{method: http.MethodPost, path: "/x", query: url.Values{}, body: []byte("{}")})
	if err != nil || resp.Code != http.StatusCreated {
		t.Fatalf("the next write: %v %v", resp, err)
	}
}

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
