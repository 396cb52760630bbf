package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/cli"
	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/server"
)

// httpGet GETs url with client and returns the status code and body.
func httpGet(t *testing.T, ctx context.Context, client *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := send(t, client, req)
	return a.code, string(a.body)
}

// hasSample reports whether a Prometheus text exposition holds the sample
// `series value` (labels in the order client_golang writes them: sorted).
func hasSample(metrics, series, value string) bool {
	for line := range strings.SplitSeq(metrics, "\n") {
		if line == series+" "+value {
			return true
		}
	}
	return false
}

// crproxyStatus runs `crproxy status` in-process against p and returns its
// output.
func crproxyStatus(t *testing.T, ctx context.Context, p *crproxytest.Proxy, args ...string) (string, error) {
	t.Helper()
	cmd := cli.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"status", "--config", p.ConfigPath, "--server", p.URL(), "--data-dir", p.DataDir}, args...))
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// Operators see each target's connection and each mirror's state: /metrics
// and /status (and `crproxy status`) for authenticated callers of the client
// cluster, /readyz for anyone; an unreachable target shows as such while
// crproxy stays ready, serving the mirror.
func TestVisibility(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "default", "client", []string{"one", "two", "three"}, "")
	createAtTarget(t, ctx, target, "default", "someone-else", []string{"not-mine"}, "")
	p := startProxy(t, client, crproxytest.Config("client", client, target))
	base := p.URL()

	// The client cluster's admin, by its client certificate, trusting
	// crproxy's self-signed certificate.
	admin := client.RESTConfig()
	admin.Host = base
	admin.CAData = nil
	admin.CAFile = p.ServingCAFile()
	authed, err := rest.HTTPClientFor(admin)
	if err != nil {
		t.Fatal(err)
	}
	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	const (
		up      = `crproxy_target_up{target="default/target"}`
		objects = `crproxy_mirror_objects{group="example.com",resource="myresources",target="default/target",version="v1"}`
	)

	t.Run("metrics for authenticated callers", func(t *testing.T) {
		// A request through the aggregator, for the request metrics. It is
		// retried: right after crproxy starts, the aggregator's first
		// availability checks can get 401 and take the group out of
		// discovery for a moment, after startProxy's checks have passed.
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			if out, err := client.Kubectl(ctx, "get", "myresources"); err != nil {
				return out
			}
			return ""
		})
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			code, body := httpGet(t, ctx, authed, base+"/metrics")
			switch {
			case code != http.StatusOK:
				return fmt.Sprintf("/metrics: %d %s", code, body)
			case !hasSample(body, up, "1"):
				return "no `" + up + " 1` in /metrics"
			case !hasSample(body, objects, "3"):
				return "no `" + objects + " 3` in /metrics:\n" + grepLines(body, "crproxy_mirror_objects")
			case !strings.Contains(body, `crproxy_requests_total{code="200",resource="myresources.example.com",verb="list"}`):
				return "the list is not counted:\n" + grepLines(body, "crproxy_requests_total")
			case !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_cpu_seconds_total"):
				return "no Go or process metrics"
			}
			return ""
		})
		for _, path := range []string{"/metrics", "/status"} {
			if code, body := httpGet(t, ctx, anonymous, base+path); code != http.StatusUnauthorized {
				t.Errorf("anonymous %s: %d, want 401\n%s", path, code, body)
			}
		}
		if code, body := httpGet(t, ctx, anonymous, base+"/readyz"); code != http.StatusOK || body != "ok" {
			t.Errorf("anonymous /readyz: %d %q", code, body)
		}
	})

	t.Run("crproxy status", func(t *testing.T) {
		out, err := crproxyStatus(t, ctx, p)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if fields := lineFields(out, "default/target"); len(fields) < 2 || fields[1] != "Connected" {
			t.Errorf("target row %q, want Connected:\n%s", fields, out)
		}
		if fields := lineFields(out, "myresources.v1.example.com"); len(fields) < 5 || fields[1] != "default/target" || fields[2] != "3" || fields[4] != "true" {
			t.Errorf("resource row %q, want 3 objects, synced:\n%s", fields, out)
		}
		out, err = crproxyStatus(t, ctx, p, "-o", "json")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var report server.StatusReport
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(report.Targets) != 1 || len(report.Targets[0].Resources) != 1 || report.Targets[0].Resources[0].Objects != 3 {
			t.Errorf("json report: %s", out)
		}
	})

	target.Stop()

	t.Run("a stopped target shows unreachable; crproxy stays ready", func(t *testing.T) {
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			out, err := crproxyStatus(t, ctx, p)
			if err != nil {
				return err.Error() + "\n" + out
			}
			if fields := lineFields(out, "default/target"); len(fields) < 2 || fields[1] != "Unreachable" {
				return "not Unreachable in:\n" + out
			}
			return ""
		})
		code, body := httpGet(t, ctx, authed, base+"/metrics")
		if code != http.StatusOK || !hasSample(body, up, "0") || !hasSample(body, objects, "3") ||
			!hasSample(body, `crproxy_target_state{state="Unreachable",target="default/target"}`, "1") {
			t.Errorf("/metrics with the target down: %d\n%s", code, grepLines(body, "crproxy_target_", "crproxy_mirror_objects"))
		}
		code, body = httpGet(t, ctx, anonymous, base+"/readyz?verbose")
		if code != http.StatusOK || !strings.Contains(body, "[-]target default/target: Unreachable since ") ||
			!strings.Contains(body, "[+]myresources.example.com ok") || !strings.HasSuffix(body, "readyz check passed\n") {
			t.Errorf("/readyz?verbose with the target down: %d\n%s", code, body)
		}
		if code, body := httpGet(t, ctx, anonymous, base+"/readyz"); code != http.StatusOK || body != "ok" {
			t.Errorf("/readyz with the target down: %d %q", code, body)
		}
	})
}

// lineFields returns the fields of the first line of out that starts with
// prefix, or nil.
func lineFields(out, prefix string) []string {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.Fields(line)
		}
	}
	return nil
}

// grepLines returns the lines of s that start with one of prefixes.
func grepLines(s string, prefixes ...string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
