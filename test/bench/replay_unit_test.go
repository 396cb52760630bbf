package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"
)

// TestReplayAnswersFromMemory checks the replay's contract: a read is
// fetched from the target once, uncompressed and without its
// resourceVersion, and answered from memory after that, whatever
// resourceVersion it asks for; a consistent read first lists the bench
// client's objects' metadata with the owner selector, and only a
// consistent read does.
func TestReplayAnswersFromMemory(t *testing.T) {
	var asked, states atomic.Int32
	body := `{"kind":"MyResourceList","items":[` + strings.Repeat(`{"kind":"MyResource"},`, 9999) + `{"kind":"MyResource"}]}`
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadataList"):
			states.Add(1)
			if got, want := r.URL.Query().Get("labelSelector"), replaySelector; got != want || r.URL.Query().Has("resourceVersion") {
				t.Errorf("the state was listed with %s, want labelSelector=%s and no resourceVersion", r.URL.RawQuery, want)
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"9"},"items":[]}`)
			return
		case r.Method != http.MethodGet:
			t.Errorf("the target was sent %s %s", r.Method, r.URL)
		}
		asked.Add(1)
		if got := r.Header.Get("Accept-Encoding"); got != "identity" {
			t.Errorf("Accept-Encoding %q, want identity", got)
		}
		if r.URL.Query().Has("resourceVersion") {
			t.Errorf("the target was asked for %s", r.URL)
		}
		_, _ = io.WriteString(w, body)
	}))
	defer target.Close()
	p, err := newReplay(context.Background(), &rest.Config{Host: target.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg := &rest.Config{Host: p.address().URL, TLSClientConfig: rest.TLSClientConfig{CAData: p.address().CA}}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"resourceVersion=", "resourceVersion=0", "resourceVersion=7&resourceVersionMatch=NotOlderThan"} {
		resp, err := hc.Get(cfg.Host + "/apis/example.com/v1/myresources?" + q)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != body || resp.ProtoMajor != 2 {
			t.Fatalf("?%s: %s %s, %d bytes, want %d", q, resp.Proto, resp.Status, len(got), len(body))
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the target was asked %d times, want once", n)
	}
	if n := states.Load(); n != 1 {
		t.Errorf("the selection's state was listed %d times, want once (for the one consistent read)", n)
	}
}
