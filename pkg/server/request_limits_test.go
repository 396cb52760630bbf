package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// withTestRequest gives r what the outer filters would: a user and the
// RequestInfo.
func withTestRequest(next http.Handler, name string) http.Handler {
	return genericapifilters.WithRequestInfo(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), &user.DefaultInfo{Name: name})))
	}), requestInfoResolver)
}

// A request that runs past the timeout is answered 504 with a Timeout
// Status, and its handler's context ends; a watch is not bounded; a
// caller's shorter ?timeout= wins.
func TestRequestTimeout(t *testing.T) {
	ended := make(chan struct{}, 4)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			ended <- struct{}{}
		case <-time.After(2 * time.Second):
			w.WriteHeader(http.StatusTeapot)
		}
	})
	h := withTestRequest(withRequestTimeout(slow, 100*time.Millisecond), "alice")
	for _, c := range []struct {
		path string
		code int
		max  time.Duration
	}{
		{"/apis/example.com/v1/namespaces/ns/myresources", http.StatusGatewayTimeout, time.Second},
		{"/apis/example.com/v1/namespaces/ns/myresources?timeout=20ms", http.StatusGatewayTimeout, 90 * time.Millisecond},
		{"/apis/example.com/v1/namespaces/ns/myresources?watch=true", http.StatusTeapot, 3 * time.Second},
	} {
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
		took := time.Since(start)
		if rec.Code != c.code || took > c.max {
			t.Errorf("%s: %d after %s; want %d within %s", c.path, rec.Code, took, c.code, c.max)
			continue
		}
		if c.code != http.StatusGatewayTimeout {
			continue
		}
		var st metav1.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Reason != metav1.StatusReasonTimeout {
			t.Errorf("%s: body %s, want a Timeout Status", c.path, rec.Body)
		}
		select {
		case <-ended:
		case <-time.After(time.Second):
			t.Errorf("%s: the handler's context did not end", c.path)
		}
	}
}

// What a handler writes once its deadline passed never reaches the
// caller: an answer not begun is the Timeout Status alone (none of the
// handler's headers or body), an answer begun is cut off so the caller
// sees a failed response, not a short one.
func TestRequestTimeoutAnswersForTheHandler(t *testing.T) {
	// The late handler writes once the caller has its answer (release):
	// kube-apiserver's filter answers at the deadline without waiting for
	// it, and would cut an answer the handler began first.
	release := make(chan struct{})
	late := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Warning", `299 - "from the handler"`)
		<-r.Context().Done()
		<-release
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("the handler's answer"))
	})
	begun := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		_, _ = w.Write([]byte(`{}]}`))
	})
	mux := http.NewServeMux()
	mux.Handle("/apis/example.com/v1/namespaces/ns/myresources/x", withTestRequest(withRequestTimeout(late, 100*time.Millisecond), "alice"))
	mux.Handle("/apis/example.com/v1/namespaces/ns/myresources", withTestRequest(withRequestTimeout(begun, 100*time.Millisecond), "alice"))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	hc := srv.Client()
	hc.Timeout = 5 * time.Second

	resp, err := hc.Get(srv.URL + "/apis/example.com/v1/namespaces/ns/myresources/x")
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st metav1.Status
	if resp.StatusCode != http.StatusGatewayTimeout || json.Unmarshal(body, &st) != nil || st.Reason != metav1.StatusReasonTimeout ||
		st.Message != "Timeout: request did not complete within the allotted timeout" {
		t.Errorf("answer %d %s, want 504 with the Timeout Status", resp.StatusCode, body)
	}
	if w := resp.Header.Get("Warning"); w != "" {
		t.Errorf("headers %v, want none of the handler's", resp.Header)
	}

	resp, err = hc.Get(srv.URL + "/apis/example.com/v1/namespaces/ns/myresources")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("the answer begun before the deadline ended cleanly: %d %s", resp.StatusCode, body)
	}
}

// Past the in-flight bound a caller gets 429 with Retry-After, reads and
// writes counted apart, watches not at all.
func TestInFlightLimit(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{}, 8)
	blocking := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	})
	h := withTestRequest(withInFlightLimit(blocking, 1, 1), "alice")
	send := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	const collection = "/apis/example.com/v1/namespaces/ns/myresources"
	go send(http.MethodGet, collection)
	go send(http.MethodPost, collection)
	<-started
	<-started
	if rec := send(http.MethodGet, collection+"/x"); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("a read past the bound: %d, Retry-After %q; want 429, 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := send(http.MethodDelete, collection+"/x"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a write past the bound: %d, want 429", rec.Code)
	}
	go send(http.MethodGet, collection+"?watch=true")
	select {
	case <-started:
	case <-time.After(time.Second):
		t.Error("a watch was held back by the in-flight bound")
	}
	close(release)
}
