package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// TestRoutesProfiling: /debug/pprof/ exists only with profiling, and only
// for authenticated callers; without it the path is the API's.
func TestRoutesProfiling(t *testing.T) {
	authn := authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		if r.Header.Get("Authorization") != "Bearer good" {
			return nil, false, nil
		}
		return &authenticator.Response{User: &user.DefaultInfo{Name: "alice"}}, true, nil
	})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	report := func() StatusReport { return StatusReport{} }
	get := func(h http.Handler, path, token string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	guarded := guard{authn: authn, failed: unauthenticated(func() bool { return false }), authz: allowAll}.wrap
	on := routes(api, guarded, report, prometheus.NewRegistry(), true)
	if code := get(on, "/debug/pprof/heap", "good"); code != http.StatusOK {
		t.Errorf("profiling on, authenticated: %d, want 200", code)
	}
	if code := get(on, "/debug/pprof/heap", ""); code != http.StatusUnauthorized {
		t.Errorf("profiling on, anonymous: %d, want 401", code)
	}
	off := routes(api, guarded, report, prometheus.NewRegistry(), false)
	if code := get(off, "/debug/pprof/heap", "good"); code != http.StatusTeapot {
		t.Errorf("profiling off: %d, want the API's answer", code)
	}
}
