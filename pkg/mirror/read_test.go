package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/store"
)

// codeOf is the HTTP code of a read's error, 200 without one: what
// faketarget.Code answers, which tests inside package mirror cannot
// import (faketarget imports mirror).
func codeOf(err error) int {
	var status apierrors.APIStatus
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &status):
		return int(status.Status().Code)
	}
	return -1
}

// readResource is a resource whose mirror held a@20 and b@30 at 30, then
// saw b change at 40: its event window reaches back to 30.
func readResource(t *testing.T) *Resource {
	t.Helper()
	c := mirrorAt(t, 30, "a@20", "b@30")
	if err := c.Update(storedObject(t, "b", "40")); err != nil {
		t.Fatal(err)
	}
	// A target nothing answers at: a read ahead of the mirror asks it for
	// its progress in vain.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	host, _ := url.Parse(srv.URL)
	r := &Resource{GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}, Cache: c,
		Selector: labels.Everything(), Target: NewTargetAt("p/t", host, &http.Client{})}
	return r
}

// The list decisions by the kube-apiserver's resourceVersion rules:
// which state answers, and the errors for states the mirror cannot give.
func TestListReads(t *testing.T) {
	for _, c := range []struct {
		name string
		read Read
		code int
		rv   uint64 // the snapshot's resourceVersion
	}{
		{"resourceVersion 0: the mirror's state", Read{}, 200, 40},
		{"not older than a version it holds", Read{Freshness: Freshness{NotOlderThan: 35}}, 200, 40},
		{"exact, within the event window", Read{Freshness: Freshness{NotOlderThan: 30}, Exact: true}, 200, 30},
		{"exact, older than the window: 410 Expired", Read{Freshness: Freshness{NotOlderThan: 10}, Exact: true}, 410, 0},
		{"exact, ahead of the mirror: 504", Read{Freshness: Freshness{NotOlderThan: 90}, Exact: true}, 504, 0},
		{"continue, within the window", Read{Continue: 30}, 200, 30},
		{"continue, older than the window: 410", Read{Continue: 10}, 410, 0},
		// Waits (for 3 s, or until the caller gives up) for a version the
		// mirror may not hold yet: one another replica served.
		{"not older than a version ahead of the mirror: 504", Read{Freshness: Freshness{NotOlderThan: 90}}, 504, 0},
		{"continue ahead of the mirror: 504", Read{Continue: 90}, 504, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			snap, err := readResource(t).List(ctx, c.read)
			if got := codeOf(err); got != c.code {
				t.Fatalf("answer %d (%v), want %d", got, err, c.code)
			}
			if err == nil && snap.ResourceVersion() != c.rv {
				t.Errorf("the state at %d, want %d", snap.ResourceVersion(), c.rv)
			}
		})
	}
}

// A GET that is not consistent reads the mirror once it may.
func TestObjectReads(t *testing.T) {
	r := readResource(t)
	o, err := r.Object(context.Background(), Read{}, "ns", "b")
	if err != nil || o.ResourceVersion != 40 {
		t.Fatalf("GET b at resourceVersion 0: %v, %v", o, err)
	}
	if _, err := r.Object(context.Background(), Read{Freshness: Freshness{NotOlderThan: 40}}, "ns", "c"); codeOf(err) != 404 {
		t.Fatalf("GET of a missing object: %v, want 404", err)
	}
}

// A watch begins with the state for sendInitialEvents=true, and without
// it for resourceVersion "" and "0"; from N it starts after N, an N gone
// from the window is the apiserver's 410 Expired, and an N the mirror does
// not reach within the wait is a 504.
func TestWatchReads(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		read      Read
		withState bool
		expired   bool
	}{
		{Read{}, true, false},
		{Read{Freshness: Freshness{NotOlderThan: 30}}, false, false},
		{Read{Freshness: Freshness{NotOlderThan: 30}, SendInitialEvents: &yes}, true, false},
		{Read{SendInitialEvents: &no}, false, false},
		{Read{Freshness: Freshness{NotOlderThan: 10}}, false, true},
		{Read{Freshness: Freshness{NotOlderThan: 90}}, false, false}, // ahead: 504
	} {
		t.Run(fmt.Sprintf("%+v", c.read), func(t *testing.T) {
			if got := c.read.InitialEvents(); got != c.withState {
				t.Errorf("InitialEvents %v, want %v", got, c.withState)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			w, snap, err := readResource(t).Watch(ctx, c.read)
			if c.read.NotOlderThan == 90 {
				if codeOf(err) != http.StatusGatewayTimeout || !strings.Contains(err.Error(), "Too large resource version") {
					t.Fatalf("err %v, want 504 Too large resource version", err)
				}
				return
			}
			if c.expired {
				if !apierrors.IsResourceExpired(err) || err.Error() != "too old resource version: 10 (40)" {
					t.Fatalf("err %v, want 410 Expired: too old resource version: 10 (40)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			if (snap != nil) != c.withState {
				t.Errorf("a snapshot %v, want one: %v", snap != nil, c.withState)
			}
		})
	}
}

// A resource never mirrored yet (first start, the target not answered)
// answers every read 503 with Retry-After once the wait for it ends.
func TestReadsOfAResourceNeverMirrored(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := readResource(t)
	r.Cache = st.Cache(store.Key{Target: "p/t", Group: "example.com", Version: "v1", Resource: "things"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, listErr := r.List(ctx, Read{})
	_, getErr := r.Object(ctx, Read{Freshness: Freshness{NotOlderThan: 5}}, "default", "a")
	_, _, watchErr := r.Watch(ctx, Read{Freshness: Freshness{NotOlderThan: 5}})
	for what, err := range map[string]error{"list": listErr, "get": getErr, "watch": watchErr} {
		var status apierrors.APIStatus
		if !errors.As(err, &status) || status.Status().Code != http.StatusServiceUnavailable || status.Status().Details == nil || status.Status().Details.RetryAfterSeconds == 0 {
			t.Errorf("%s: %v, want 503 with Retry-After", what, err)
		}
	}
}
