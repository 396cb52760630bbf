package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// floodBound is how much crproxy's heap in use (after a GC) may grow over a
// flood of requests from callers it does not authenticate or authorize.
// Nothing of such a request may outlive it; what is allowed is state of a
// fixed size: the decision cache's entries (6,000 of the flood's denials,
// each a digest and a short answer: about 1 to 2 MiB), TLS and HTTP/2
// buffers, runtime pools. A cache keyed by the requests' text would hold
// 6,000 of the 9 KB paths (over 50 MiB); a metric series per path, over
// 100 MiB.
const floodBound = 8 << 20

// unauthenticatedRequests and unauthorizedRequests are the requests of
// each shape in a flood: 30,000 of unauthenticated callers, 6,000 of a
// caller without RBAC (each of which costs a SubjectAccessReview).
const (
	unauthenticatedRequests = 3_750
	unauthorizedRequests    = 1_500
)

// floodShape is one way to send requests crproxy refuses.
type floodShape struct {
	name string
	// tls is the caller's TLS configuration (its client certificate).
	tls *tls.Config
	// pad is the bytes of padding in each unique path (0: a short path).
	pad int
	// shared sends every request on one HTTP/2 connection (as far as
	// crproxy keeps it open); otherwise each request opens its own.
	shared bool
	// code is the answer every request must get.
	code int
	// requests is how many of them a flood sends.
	requests int
}

// heapInUse is team-b's crproxy's heap in use right after a garbage
// collection, read from its heap profile's memory statistics.
func (a *arena) heapInUse(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	got := a.send(t, ctx, true, "GET", "/debug/pprof/heap?debug=1&gc=1", "", nil)
	if got.code != http.StatusOK {
		t.Fatalf("heap profile: %d %s", got.code, truncate(got.body))
	}
	m := regexp.MustCompile(`(?m)^# HeapInuse = (\d+)$`).FindSubmatch(got.body)
	if m == nil {
		t.Fatalf("no HeapInuse in the heap profile:\n%s", truncate(got.body))
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n
}

// flood sends n requests of shape s at team-b's crproxy, each to a unique
// path, from 8 workers, and fails at the first answer that is not s.code.
func (a *arena) flood(t *testing.T, ctx context.Context, s floodShape, n int) {
	t.Helper()
	newTransport := func() *http.Transport {
		return &http.Transport{TLSClientConfig: s.tls.Clone(), ForceAttemptHTTP2: s.shared, DisableKeepAlives: !s.shared}
	}
	shared := newTransport()
	defer shared.CloseIdleConnections()
	pad := strings.Repeat("p", s.pad)
	var next, failures atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil || failures.Load() > 0 {
					return
				}
				tr := shared
				if !s.shared {
					tr = newTransport()
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/apis/example.com/v1/namespaces/ns-%d/myresources/x-%d/%d%s", a.directBase, i, i, i, pad), nil)
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if err != nil {
					if failures.Add(1) == 1 {
						t.Errorf("%s, request %d: %v", s.name, i, err)
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != s.code && failures.Add(1) == 1 {
					t.Errorf("%s, request %d: %d, want %d", s.name, i, resp.StatusCode, s.code)
				}
			}
		})
	}
	wg.Wait()
}

// floodShapes are the refused callers' shapes: with no certificate, with a
// self-signed one (both answered 401), and with one of the client
// cluster's CA for a user it grants nothing (403); each with short and
// long paths (20 KB; 9 KB for the 403s, the longest a review kept by its
// text would have been cached), one connection per request and one
// shared HTTP/2 connection.
func floodShapes(t *testing.T, a *arena) []floodShape {
	t.Helper()
	noRBAC, err := a.proxyB.DirectConfig("mallory")
	if err != nil {
		t.Fatal(err)
	}
	authenticated, err := rest.TLSConfigFor(noRBAC)
	if err != nil {
		t.Fatal(err)
	}
	callers := []struct {
		name           string
		tls            *tls.Config
		code, pad, ask int
	}{
		{"no certificate", &tls.Config{InsecureSkipVerify: true}, http.StatusUnauthorized, 20_000, unauthenticatedRequests},
		{"a self-signed certificate", selfSignedClient(t, "system:admin", "system:masters").Transport.(*http.Transport).TLSClientConfig, http.StatusUnauthorized, 20_000, unauthenticatedRequests},
		{"a client certificate without RBAC", authenticated, http.StatusForbidden, 9_000, unauthorizedRequests},
	}
	var shapes []floodShape
	for _, c := range callers {
		for _, pad := range []int{0, c.pad} {
			for _, shared := range []bool{false, true} {
				name := fmt.Sprintf("%s, %d bytes of padding, ", c.name, pad)
				name += map[bool]string{false: "a connection each", true: "one HTTP/2 connection"}[shared]
				shapes = append(shapes, floodShape{name: name, tls: c.tls, pad: pad, shared: shared, code: c.code, requests: c.ask})
			}
		}
	}
	return shapes
}

// testFloodLeavesMemoryBounded floods team-b's crproxy with requests it
// refuses, each shape's number, while team-b's admin keeps reading;
// the heap in use after a GC must stay within floodBound of where it was,
// and the admin must be served throughout.
func testFloodLeavesMemoryBounded(t *testing.T, ctx context.Context, a *arena) {
	shapes := floodShapes(t, a)
	// Warm up buffers, pools and connections.
	for _, s := range shapes {
		a.flood(t, ctx, s, 200)
	}
	before := a.heapInUse(t, ctx)

	stop := make(chan struct{})
	var served, refused atomic.Int64
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			got := a.send(t, ctx, true, "GET", "/apis/example.com/v1/namespaces/arena/myresources", "", nil)
			if got.code == http.StatusOK && strings.Contains(string(got.body), "b-own") {
				served.Add(1)
			} else if refused.Add(1) == 1 {
				t.Errorf("team-b's admin, during the flood: %d %s", got.code, truncate(got.body))
			}
		}
	})
	start := time.Now()
	total := 0
	for _, s := range shapes {
		a.flood(t, ctx, s, s.requests)
		total += s.requests
	}
	took := time.Since(start)
	close(stop)
	reader.Wait()

	after := a.heapInUse(t, ctx)
	grew := int64(after) - int64(before)
	t.Logf("heap in use after GC: %.1f MiB before, %.1f MiB after %d refused requests in %s (%+.1f MiB); team-b's admin was served %d lists meanwhile",
		float64(before)/(1<<20), float64(after)/(1<<20), total, took.Round(time.Second), float64(grew)/(1<<20), served.Load())
	if grew > floodBound {
		t.Errorf("crproxy's heap in use grew by %.1f MiB over %d refused requests, more than the bound of %d MiB", float64(grew)/(1<<20), total, floodBound>>20)
	}
	if served.Load() == 0 {
		t.Error("team-b's admin was not served a single list during the flood")
	}
	metrics := a.send(t, ctx, true, "GET", "/metrics", "", nil)
	for _, segment := range []string{"ns-1", "x-1", "pppp"} {
		if strings.Contains(string(metrics.body), segment) {
			t.Errorf("/metrics shows %q, a path segment of a refused request", segment)
		}
	}
}
