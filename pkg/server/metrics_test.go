package server

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
)

func TestStatusCollector(t *testing.T) {
	c := &statusCollector{report: statusTestReport, now: func() time.Time { return statusTestSince.Add(150 * time.Second) }}
	want := `
# HELP crproxy_target_up 1 when the target answers (Connected or Resyncing), 0 when it is Unreachable or Forbidden.
# TYPE crproxy_target_up gauge
crproxy_target_up{target="default/down"} 0
crproxy_target_up{target="default/up"} 1
# HELP crproxy_target_state The target's connection state: 1 for the current state, 0 for the others.
# TYPE crproxy_target_state gauge
crproxy_target_state{state="Connected",target="default/down"} 0
crproxy_target_state{state="Forbidden",target="default/down"} 0
crproxy_target_state{state="Resyncing",target="default/down"} 0
crproxy_target_state{state="Unreachable",target="default/down"} 1
crproxy_target_state{state="Connected",target="default/up"} 1
crproxy_target_state{state="Forbidden",target="default/up"} 0
crproxy_target_state{state="Resyncing",target="default/up"} 0
crproxy_target_state{state="Unreachable",target="default/up"} 0
# HELP crproxy_target_reconnects_total Returns of the target from Unreachable or Forbidden since crproxy started.
# TYPE crproxy_target_reconnects_total counter
crproxy_target_reconnects_total{target="default/down"} 2
crproxy_target_reconnects_total{target="default/up"} 0
# HELP crproxy_target_seconds_since_last_event Seconds since the mirror last received a watch event or bookmark from the target; absent before the first.
# TYPE crproxy_target_seconds_since_last_event gauge
crproxy_target_seconds_since_last_event{target="default/up"} 90
# HELP crproxy_mirror_objects Objects in the mirror of a resource.
# TYPE crproxy_mirror_objects gauge
crproxy_mirror_objects{group="example.com",resource="things",target="default/down",version="v1"} 3
crproxy_mirror_objects{group="other.com",resource="widgets",target="default/up",version="v2"} 0
# HELP crproxy_mirror_resource_version The target's resourceVersion the mirror of a resource is at (0 before its first sync).
# TYPE crproxy_mirror_resource_version gauge
crproxy_mirror_resource_version{group="example.com",resource="things",target="default/down",version="v1"} 42
crproxy_mirror_resource_version{group="other.com",resource="widgets",target="default/up",version="v2"} 7
# HELP crproxy_mirror_synced 1 when the mirror of a resource holds a complete state (listed from the target, or loaded from disk).
# TYPE crproxy_mirror_synced gauge
crproxy_mirror_synced{group="example.com",resource="things",target="default/down",version="v1"} 1
crproxy_mirror_synced{group="other.com",resource="widgets",target="default/up",version="v2"} 1
# HELP crproxy_watch_clients Watches open on the mirror of a resource.
# TYPE crproxy_watch_clients gauge
crproxy_watch_clients{group="example.com",resource="things",target="default/down",version="v1"} 1
crproxy_watch_clients{group="other.com",resource="widgets",target="default/up",version="v2"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// The registry crproxy serves passes its consistency checks with the
	// Go and process collectors beside.
	reg := newRegistry(statusTestReport, newRequestMetrics(func(_, _, _, _ string) bool { return true }))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// instrumented is h behind the request metrics and RequestInfo, as in
// New; only things.example.com/v1 is proxied.
func instrumented(h http.Handler) (http.Handler, *requestMetrics) {
	m := newRequestMetrics(func(group, version, resource, subresource string) bool {
		return group == "example.com" && version == "v1" && resource == "things" && (subresource == "" || subresource == "status")
	})
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("apis", "api"), GrouplessAPIPrefixes: sets.NewString("api")}
	return genericapifilters.WithRequestInfo(m.instrument(h), resolver), m
}

func TestInstrumentLabels(t *testing.T) {
	h, m := instrumented(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/missing"):
			http.NotFound(w, r)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
		case strings.HasSuffix(r.URL.Path, "/status"):
			_, _ = w.Write([]byte("{}")) // no WriteHeader: 200
		default:
			// nothing written: 200
		}
	}))
	requests := []struct{ method, path string }{
		{"GET", "/apis/example.com/v1/namespaces/a/things/x"},
		{"GET", "/apis/example.com/v1/namespaces/a/things/x/status"},
		{"GET", "/apis/example.com/v1/things"},
		{"POST", "/apis/example.com/v1/namespaces/a/things"},
		// Names crproxy does not serve are not label values.
		{"GET", "/apis/example.com/v1/namespaces/a/made-up-1/missing"},
		{"GET", "/apis/example.com/v9/things/missing"},
		// Nor are subresources it does not serve, of a resource it does.
		{"GET", "/apis/example.com/v1/namespaces/a/things/x/made-up-2"},
		{"GET", "/apis/example.com/v1/namespaces/a/things/x/made-up-3/missing"},
		{"BREW", "/apis"},
		{"GET", "/apis/example.com/v1"},
	}
	for _, r := range requests {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}
	want := map[[3]string]float64{
		{"get", "things.example.com", "200"}:        1,
		{"get", "things.example.com/status", "200"}: 1,
		{"list", "things.example.com", "200"}:       1,
		{"create", "things.example.com", "201"}:     1,
		{"get", "", "404"}:                          3,
		{"other", "", "200"}:                        1,
		{"get", "", "200"}:                          2,
	}
	if got := testutil.CollectAndCount(m.total); got != len(want) {
		t.Errorf("%d series, want %d", got, len(want))
	}
	for labels, n := range want {
		if got := testutil.ToFloat64(m.total.WithLabelValues(labels[:]...)); got != n {
			t.Errorf("requests_total%v = %v, want %v", labels, got, n)
		}
	}
	if got := testutil.CollectAndCount(m.duration); got != len(want) {
		t.Errorf("duration: %d series, want %d", got, len(want))
	}
}

// A watch is observed when its headers go out, not when it ends, and the
// wrapped writer still flushes (the watch stream needs it).
func TestInstrumentWatchObservedAtHeaders(t *testing.T) {
	release := make(chan struct{})
	h, m := instrumented(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("{\"type\":\"ADDED\"}\n"))
		w.(http.Flusher).Flush()
		<-release
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/apis/example.com/v1/things?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "{\"type\":\"ADDED\"}\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	// The watch is still open.
	if got := testutil.ToFloat64(m.total.WithLabelValues("watch", "things.example.com", "200")); got != 1 {
		t.Errorf("open watch counted %v times, want 1", got)
	}
	time.Sleep(300 * time.Millisecond)
	close(release)
	_, _ = resp.Body.Read(make([]byte, 1))
	if got := testutil.ToFloat64(m.total.WithLabelValues("watch", "things.example.com", "200")); got != 1 {
		t.Errorf("ended watch counted %v times, want 1", got)
	}
	if sum := histogramSum(t, m.duration); sum >= 0.3 {
		t.Errorf("the watch's observed duration %.3fs includes its life", sum)
	}
}

// A panic is observed as 500 and still reaches the panic recovery.
func TestInstrumentPanic(t *testing.T) {
	h, m := instrumented(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/apis/example.com/v1/things", nil))
	}()
	if got := testutil.ToFloat64(m.total.WithLabelValues("list", "things.example.com", "500")); got != 1 {
		t.Errorf("panicking request counted %v, want 1 as 500", got)
	}
}

func histogramSum(t *testing.T, h *prometheus.HistogramVec) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			sum += metric.GetHistogram().GetSampleSum()
		}
	}
	return sum
}
