package localcluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"
)

// TestRequestProxyFaults checks the three fates of a request through a
// RequestProxy: forwarded, lost before the backend saw it, and lost after.
func TestRequestProxyFaults(t *testing.T) {
	var seen atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		_, _ = io.WriteString(w, "answer to "+r.Method+" "+r.URL.Path)
	}))
	backend.EnableHTTP2 = true
	backend.StartTLS()
	defer backend.Close()
	ca := encodeCert(backend.Certificate().Raw)
	p, err := NewRequestProxy(&rest.Config{Host: backend.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hc, err := rest.HTTPClientFor(p.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) (string, error) {
		req, _ := http.NewRequest(method, p.RESTConfig().Host+path, strings.NewReader("{}"))
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("%s %s: %s, want HTTP/2", method, path, resp.Proto)
		}
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	isPut := func(r *http.Request) bool { return r.Method == http.MethodPut }

	lost, _ := p.FailNext(isPut, LoseRequest)
	if got, err := do(http.MethodPost, "/a"); err != nil || got != "answer to POST /a" || seen.Load() != 1 {
		t.Fatalf("an unmatched request: %q %v, backend saw %d", got, err, seen.Load())
	}
	if _, err := do(http.MethodPut, "/b"); err == nil || seen.Load() != 1 {
		t.Fatalf("a lost request: %v, backend saw %d requests, want 1", err, seen.Load())
	}
	<-lost
	if got, err := do(http.MethodPut, "/c"); err != nil || got != "answer to PUT /c" {
		t.Fatalf("a fault is used once: %q %v", got, err)
	}

	answerLost, _ := p.FailNext(isPut, LoseAnswer)
	if _, err := do(http.MethodPut, "/d"); err == nil || seen.Load() != 3 {
		t.Fatalf("a lost answer: %v, backend saw %d requests, want 3", err, seen.Load())
	}
	<-answerLost

	_, disarm := p.FailNext(isPut, LoseRequest)
	disarm()
	if got, err := do(http.MethodPut, "/e"); err != nil || got != "answer to PUT /e" {
		t.Fatalf("a disarmed fault: %q %v", got, err)
	}
}
