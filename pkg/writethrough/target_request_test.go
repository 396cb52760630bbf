package writethrough

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/internal/faketarget"
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
	_, err := w.do(context.Background(), testTarget(t, faketarget.Refused(t)), "", targetRequest{method: http.MethodPost, path: "/x", query: url.Values{}, body: []byte("{}")})
	if !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("dial refused: %v, want 503", err)
	}

	// A server that reads the request and hangs up without answering: the
	// outcome is unknown: 504.
	_, err = w.do(context.Background(), testTarget(t, faketarget.HangUp(t)), "", targetRequest{method: http.MethodPost, path: "/x", query: url.Values{}, body: []byte("{}")})
	if !apierrors.IsTimeout(err) {
		t.Fatalf("connection lost after sending: %v, want 504", err)
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

// unreachableFor makes the target's HTTP client fail to dial for the
// requests refuse picks, as when the target goes away between two
// requests of one write.
type unreachableFor struct {
	next   http.RoundTripper
	refuse func(*http.Request) bool
}

// ownedObject is fakeObject named name.
func ownedObject(name string) string {
	return strings.Replace(strings.Replace(fakeObject, `"name":"x"`, `"name":"`+name+`"`, 1), `"uid":"u1"`, `"uid":"u-`+name+`"`, 1)
}

func (u unreachableFor) RoundTrip(r *http.Request) (*http.Response, error) {
	if u.refuse(r) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return u.next.RoundTrip(r)
}
