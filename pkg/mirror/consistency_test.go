package mirror

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// A caller that gives up on a consistent GET (its context ends while the
// GET at the target runs) says nothing about the target: the target is
// not marked unreachable, which would answer every other reader from the
// mirror with a Warning. A GET that finds no target still marks it.
func TestGetAtTargetCallerGivingUpLeavesTheTargetUp(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { <-req.Context().Done() }))
	defer hang.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	resource := func(server string) *Resource {
		u, _ := url.Parse(server)
		r := NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"},
			metav1.APIResource{Name: "things", Kind: "Thing", Namespaced: true})
		r.Target = &Target{ID: "p/t", httpClient: &http.Client{}, Host: u,
			Connection: reconnect.NewTracker("p/t", reconnect.Options{})}
		return r
	}

	r := resource(hang.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := r.getAtTarget(ctx, "default", "one"); err == nil {
		t.Fatal("a GET whose caller gave up returned no error")
	}
	if _, down := r.Target.Connection.Down(); down {
		t.Error("a caller giving up marked the target unreachable")
	}

	r = resource(closed.URL)
	if _, _, err := r.getAtTarget(context.Background(), "default", "one"); err == nil {
		t.Fatal("a GET of a closed server returned no error")
	}
	if _, down := r.Target.Connection.Down(); !down {
		t.Error("a GET that found no target left it up")
	}
}
