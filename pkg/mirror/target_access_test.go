package mirror_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// targetAt is a target at the test server's URL with its plain client.
func targetAt(t *testing.T, srv *httptest.Server) *mirror.Target {
	t.Helper()
	host, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return mirror.NewTargetAt("default/target", host, srv.Client())
}

// A target reached below a path (a platform's proxy URL) gets its calls
// below that path too, as its reads through client-go; the call's
// headers, query and body arrive, and the answer comes back whole with
// its Warning headers.
func TestSendBelowTheTargetURLPath(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/kubernetes/project/p/virtualcluster/x/apis/example.com/v1/namespaces/ns/myresources" ||
			r.URL.Query().Get("fieldManager") != "m" || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("Accept") != "application/json" || r.Header.Get("Impersonate-Extra-X") != "alice" {
			http.Error(w, r.URL.String()+" "+r.Header.Get("Content-Type"), http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Warning", `299 - "deprecated"`)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"kind":"MyResource"}`))
	}))
	defer srv.Close()
	target := targetAt(t, srv)
	target.Host.Path = "/kubernetes/project/p/virtualcluster/x/"
	a, err := target.Send(context.Background(), mirror.Call{
		Method: http.MethodPost, Path: "/apis/example.com/v1/namespaces/ns/myresources",
		Query: url.Values{"fieldManager": {"m"}}, ContentType: "application/json", Body: []byte("{}"),
		Header: http.Header{"Impersonate-Extra-X": {"alice"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.Code != http.StatusCreated || string(a.Body) != `{"kind":"MyResource"}` || a.ContentType != "application/json" {
		t.Fatalf("answer %d %s %q", a.Code, a.ContentType, a.Body)
	}
	if len(a.Warnings) != 1 || a.Warnings[0].Text != "deprecated" {
		t.Errorf("warnings %+v, want the target's one", a.Warnings)
	}
}

// A call without an answer says whether the target may have read it,
// and whether the caller had left (then the target's health is kept).
func TestSendFailures(t *testing.T) {
	// Nothing listens: the dial fails, nothing was sent.
	closed, _ := url.Parse("http://" + faketarget.Refused(t))
	target := mirror.NewTargetAt("default/target", closed, &http.Client{})
	_, err := target.Send(context.Background(), mirror.Call{Method: http.MethodPost, Path: "/x", Body: []byte("{}")})
	var failed *mirror.CallError
	if !errors.As(err, &failed) || failed.Sent || failed.CallerGone {
		t.Fatalf("dial refused: %#v, want a CallError not sent", err)
	}
	if st := target.Connection.Status(); st.State != reconnect.Unreachable {
		t.Errorf("after a refused dial the target is %s, want Unreachable", st.State)
	}

	// A server that reads the request and hangs up: it may have acted.
	host, _ := url.Parse("http://" + faketarget.HangUp(t))
	target = mirror.NewTargetAt("default/target", host, &http.Client{})
	_, err = target.Send(context.Background(), mirror.Call{Method: http.MethodPost, Path: "/x", Body: []byte("{}")})
	if !errors.As(err, &failed) || !failed.Sent || failed.CallerGone {
		t.Fatalf("hung up after reading: %#v, want a CallError sent", err)
	}

	// The caller left before anything was sent: not the target's failure.
	target = mirror.NewTargetAt("default/target", host, &http.Client{})
	target.Connection.MarkSynced()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = target.Send(gone, mirror.Call{Method: http.MethodPost, Path: "/x", Body: []byte("{}")})
	if !errors.As(err, &failed) || failed.Sent || !failed.CallerGone {
		t.Fatalf("caller gone: %#v, want a CallError of a caller gone, not sent", err)
	}
	if st := target.Connection.Status(); st.State != reconnect.Connected {
		t.Errorf("after a caller left the target is %s, want Connected", st.State)
	}
}
