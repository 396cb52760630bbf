package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crproxy/crproxy/pkg/platform"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

var statusTestSince = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// statusTestReport has two targets: "default/up" connected and
// "default/down" unreachable, each with one synced resource.
func statusTestReport() StatusReport {
	return StatusReport{Targets: []TargetStatus{
		{
			Status:    reconnect.Status{Target: "default/down", State: reconnect.Unreachable, Since: statusTestSince, LastError: "dial tcp 10.0.0.1:6443: connection refused", Reconnects: 2},
			Resources: []ResourceStatus{{Group: "example.com", Version: "v1", Resource: "things", Objects: 3, ResourceVersion: "42", Synced: true, Watchers: 1}},
		},
		{
			Status:    reconnect.Status{Target: "default/up", State: reconnect.Connected, Since: statusTestSince, LastEvent: statusTestSince.Add(time.Minute)},
			Resources: []ResourceStatus{{Group: "other.com", Version: "v2", Resource: "widgets", Objects: 0, ResourceVersion: "7", Synced: true}},
		},
	}}
}

func getReadyz(t *testing.T, query string, report StatusReport) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz"+query, nil), report)
	return rec.Code, rec.Body.String()
}

// An unreachable target does not make crproxy unready while its mirror is
// synced; ?verbose lists it, without its error (the endpoint is public).
func TestReadyzUnreachableTargetStaysReady(t *testing.T) {
	report := statusTestReport()
	if code, body := getReadyz(t, "", report); code != http.StatusOK || body != "ok" {
		t.Fatalf("readyz: %d %q, want 200 ok", code, body)
	}
	code, body := getReadyz(t, "?verbose", report)
	want := "[-]target default/down: Unreachable since 2026-05-04T10:00:00Z\n" +
		"[+]things.example.com ok\n" +
		"[+]target default/up ok\n" +
		"[+]widgets.other.com ok\n" +
		"readyz check passed\n"
	if code != http.StatusOK || body != want {
		t.Fatalf("readyz?verbose: %d\n%s\nwant\n%s", code, body, want)
	}
	if strings.Contains(body, "10.0.0.1") {
		t.Errorf("readyz shows the last error: %s", body)
	}
}

// A resource never synced, or a group/version with no resources, fails the
// check, whatever the target's state; the answer lists every check.
func TestReadyzNotSynced(t *testing.T) {
	report := statusTestReport()
	report.Targets[1].Resources[0].Synced = false
	report.Targets[1].Status.State = reconnect.Resyncing
	report.Targets[0].Undiscovered = []string{"example.com/v2"}
	for _, query := range []string{"", "?verbose"} {
		code, body := getReadyz(t, query, report)
		want := "[-]target default/down: Unreachable since 2026-05-04T10:00:00Z\n" +
			"[-]example.com/v2: no resources discovered at target default/down yet\n" +
			"[+]things.example.com ok\n" +
			"[+]target default/up ok: Resyncing since 2026-05-04T10:00:00Z\n" +
			"[-]widgets.other.com: not mirrored from target default/up yet\n" +
			"readyz check failed\n"
		if code != http.StatusServiceUnavailable || body != want {
			t.Errorf("readyz%s: %d\n%s\nwant\n%s", query, code, body, want)
		}
	}
}

// A group/version whose target serves none of its resources now (its
// CRDs deleted) is listed but keeps crproxy ready: the other
// group/versions stay in service.
func TestReadyzUnservedGroupVersionStaysReady(t *testing.T) {
	report := statusTestReport()
	report.Targets[1].Unserved = []string{"gone.example.com/v1"}
	code, body := getReadyz(t, "?verbose", report)
	want := "[-]target default/down: Unreachable since 2026-05-04T10:00:00Z\n" +
		"[+]things.example.com ok\n" +
		"[+]target default/up ok\n" +
		"[+]gone.example.com/v1: target default/up serves none of its resources\n" +
		"[+]widgets.other.com ok\n" +
		"readyz check passed\n"
	if code != http.StatusOK || body != want {
		t.Fatalf("readyz?verbose: %d\n%s\nwant\n%s", code, body, want)
	}
}

// /status is the report as JSON, the target's connection Status inline.
func TestStatusHandlerJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	statusHandler(statusTestReport).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var raw struct {
		Targets []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	down := raw.Targets[0]
	if down["target"] != "default/down" || down["state"] != "Unreachable" || down["lastError"] == nil || down["reconnects"] != 2.0 {
		t.Errorf("target fields not inline: %v", down)
	}
	if _, ok := down["lastEvent"]; ok {
		t.Errorf("lastEvent of a target that never sent one: %v", down["lastEvent"])
	}
	var back StatusReport
	if err := json.Unmarshal(rec.Body.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Targets[0].Resources[0]; got.Objects != 3 || got.ResourceVersion != "42" || !got.Synced || got.Watchers != 1 {
		t.Errorf("resource round trip: %+v", got)
	}
	rec = httptest.NewRecorder()
	statusHandler(statusTestReport).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %d", rec.Code)
	}
}

// Until the client cluster's CAs are loaded crproxy is not ready: callers'
// certificates would not be authenticated.
func TestReadyzWaitsForClientCAs(t *testing.T) {
	report := statusTestReport()
	report.ClientCAsPending = true
	code, body := getReadyz(t, "", report)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]client-ca: the client cluster's CA bundles are not loaded yet") {
		t.Fatalf("readyz with the CAs pending: %d\n%s", code, body)
	}
}

// A target the platform refuses is listed with the check to run, and its
// unmirrored resources do not make crproxy unready: crproxy answers their
// requests itself, with 403. An allowed target's are still checked.
func TestReadyzPlatformRefusal(t *testing.T) {
	report := statusTestReport()
	report.Targets[0].Resources[0].Synced = false
	report.Platform = []platform.Decision{
		{Target: "default/down", Name: "down", Project: "default", Identity: "loft:vcluster:p-default:c", State: platform.Denied, Since: statusTestSince, LastError: "https://10.9.9.9"},
		{Target: "default/up", Name: "up", Project: "default", State: platform.Allowed},
	}
	code, body := getReadyz(t, "?verbose", report)
	if code != http.StatusOK || !strings.Contains(body, "[-]platform use of target default/down: Denied since 2026-05-04T10:00:00Z (check: kubectl auth can-i use virtualclusterinstances/down --as=loft:vcluster:p-default:c -n p-default)") ||
		!strings.Contains(body, "[+]platform use of target default/up ok") || strings.Contains(body, "10.9.9.9") {
		t.Fatalf("readyz?verbose: %d\n%s", code, body)
	}
	report.Platform[1].State = platform.Allowed
	report.Targets[1].Resources[0].Synced = false
	if code, _ := getReadyz(t, "", report); code != http.StatusServiceUnavailable {
		t.Errorf("an allowed target's unmirrored resource: %d, want 503", code)
	}
}
