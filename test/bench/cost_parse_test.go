package bench

import (
	"strings"
	"testing"
)

// TestParseRequestCounts checks the reading of apiserver_request_total
// that the cost of consistent reads (B1, B2) rests on; it starts no
// cluster.
func TestParseRequestCounts(t *testing.T) {
	metrics := `# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="example.com",resource="myresources",scope="namespace",subresource="",verb="LIST",version="v1"} 7
apiserver_request_total{code="429",component="apiserver",dry_run="",group="example.com",resource="myresources",scope="namespace",subresource="",verb="LIST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="PATCH",version="v1"} 500
apiserver_request_total{code="200",component="",dry_run="",group="",resource="",scope="",subresource="/readyz",verb="GET",version=""} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 1.5e+01
apiserver_request_total{code="200",component="",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 40
apiserver_request_total{code="200",component="apiserver",dry_run="",group="example.com",resource="myresources",scope="namespace",subresource="",verb="PATCH",version="v1"} 4
apiserver_request_total{code="201",component="apiserver",dry_run="",group="example.com",resource="myresources",scope="namespace",subresource="",verb="POST",version="v1"} 1
apiserver_request_duration_seconds_count{verb="LIST"} 99
`
	got, err := parseRequestCounts([]byte(metrics))
	if err != nil {
		t.Fatal(err)
	}
	want := requestCounts{"LIST example.com/myresources": 9, "GET /readyz": 3, "PUT coordination.k8s.io/leases": 15,
		"PATCH example.com/myresources": 4, "POST example.com/myresources": 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	if w, r := got.writes(proxiedResource), got.reads(proxiedResource); w != 5 || r != 9 {
		t.Errorf("writes %v, reads %v of %s; want 5 and 9", w, r, proxiedResource)
	}
	before := requestCounts{"LIST example.com/myresources": 4, "GET /readyz": 3, "PATCH example.com/myresources": 4, "POST example.com/myresources": 1}
	if d := got.since(before); d.total() != 20 || d.String() != "PUT coordination.k8s.io/leases 15, LIST example.com/myresources 5" {
		t.Errorf("since: %v (total %v)", d, d.total())
	}
	if _, err := parseRequestCounts([]byte(`apiserver_request_total{verb="GET 1`)); err == nil {
		t.Error("a cut-off sample parsed")
	}
}

// TestCountObjects checks that a list's objects are counted however its
// body streams in.
func TestCountObjects(t *testing.T) {
	list := `{"kind":"MyResourceList","items":[{"kind":"MyResource","metadata":{"name":"a","labels":{"x":"y"}}}]}`
	var whole objectCounter
	_, _ = whole.Write([]byte(list))
	if n := whole.objects(); n != 1 {
		t.Errorf("objectCounter: %d objects, want 1", n)
	}
	// As a body streams in: any split, and in pieces of any size.
	long := strings.Repeat(list, 3)
	for size := 1; size <= 40; size++ {
		for first := range size {
			var c objectCounter
			rest := long
			for piece := first; len(rest) > 0; piece = size {
				piece = max(1, min(piece, len(rest)))
				_, _ = c.Write([]byte(rest[:piece]))
				rest = rest[piece:]
			}
			if got := c.objects(); got != 3 || c.n != int64(len(long)) {
				t.Fatalf("pieces of %d after %d: %d objects in %d bytes, want 3 in %d", size, first, got, c.n, len(long))
			}
		}
	}
}

// TestParseHandlerTimes checks the reading of crproxy's own answering
// time, the "mean time in crproxy's handler" rows.
func TestParseHandlerTimes(t *testing.T) {
	metrics := `# TYPE crproxy_request_duration_seconds histogram
crproxy_request_duration_seconds_bucket{code="200",resource="myresources.example.com",verb="get",le="0.005"} 90
crproxy_request_duration_seconds_sum{code="200",resource="myresources.example.com",verb="get"} 0.2
crproxy_request_duration_seconds_count{code="200",resource="myresources.example.com",verb="get"} 100
crproxy_request_duration_seconds_sum{code="404",resource="myresources.example.com",verb="get"} 0.1
crproxy_request_duration_seconds_count{code="404",resource="myresources.example.com",verb="get"} 50
crproxy_request_duration_seconds_sum{code="200",resource="",verb="get"} 9
crproxy_request_duration_seconds_count{code="200",resource="",verb="get"} 9
crproxy_requests_total{code="200",resource="myresources.example.com",verb="get"} 150
`
	got, err := parseHandlerTimes([]byte(metrics))
	if err != nil {
		t.Fatal(err)
	}
	if n, s := got.requests, got.seconds; n != 150 || s < 0.2999 || s > 0.3001 {
		t.Fatalf("got %v requests in %v s, want 150 in 0.3 s (%v)", n, s, got)
	}
}
