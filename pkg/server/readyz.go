package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/platform"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// readyz answers /readyz in the kube-apiserver's style: "ok" when ready;
// with ?verbose, or when not ready, one line per check ("[+]name ok" or
// "[-]name: why") and "readyz check passed" or "readyz check failed".
//
// crproxy is ready once every proxied resource can be served: its mirror
// holds a synced state, from the target or loaded from disk. A target's
// connection is listed but never fails the check: while a target is
// unreachable (or refuses the identity) reads are served from the mirror
// (docs/design/operations.md), so taking crproxy out of service then would
// remove it exactly when it is the only source of those reads. A resource
// that was never synced fails the check whatever its target's state, as
// does a group/version whose discovery was never read; one the target is
// known to serve nothing of (its CRDs deleted) does not.
func readyz(w http.ResponseWriter, r *http.Request, report StatusReport) {
	var lines []string
	ready := true
	if report.ClientCAsPending {
		ready = false
		lines = append(lines, "[-]client-ca: the client cluster's CA bundles are not loaded yet")
	}
	refused := map[string]bool{}
	for _, d := range report.Platform {
		lines = append(lines, platformCheck(d))
		refused[d.Target] = d.State == platform.Denied
	}
	for _, t := range report.Targets {
		lines = append(lines, targetCheck(t.Status))
		if refused[t.Target] {
			// crproxy answers this target's requests itself (403), with
			// nothing mirrored: not a reason to be taken out of service.
			continue
		}
		for _, gv := range t.Undiscovered {
			ready = false
			lines = append(lines, fmt.Sprintf("[-]%s: no resources discovered at target %s yet", gv, t.Target))
		}
		for _, gv := range t.Unserved {
			// The target serves none of them now (a CRD deleted): its
			// APIService is withdrawn, and the other group/versions must
			// stay in service.
			lines = append(lines, fmt.Sprintf("[+]%s: target %s serves none of its resources", gv, t.Target))
		}
		for _, res := range t.Resources {
			name := schema.GroupResource{Group: res.Group, Resource: res.Resource}.String()
			if !res.Synced {
				ready = false
				lines = append(lines, fmt.Sprintf("[-]%s: not mirrored from target %s yet", name, t.Target))
				continue
			}
			lines = append(lines, fmt.Sprintf("[+]%s ok", name))
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "%s\nreadyz check failed\n", strings.Join(lines, "\n"))
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; !verbose {
		_, _ = w.Write([]byte("ok"))
		return
	}
	_, _ = fmt.Fprintf(w, "%s\nreadyz check passed\n", strings.Join(lines, "\n"))
}

// platformCheck is the line of the platform's permission to use a target.
// It never fails the check: a refusal is answered by crproxy itself (403,
// naming the permission), which an unready crproxy could not do. Like a
// target's line, it leaves out the last error, which may name the
// management cluster's address.
func platformCheck(d platform.Decision) string {
	if d.State == platform.Allowed {
		return fmt.Sprintf("[+]platform use of target %s ok", d.Target)
	}
	return fmt.Sprintf("[-]platform use of target %s: %s since %s (check: %s)", d.Target, d.State, d.Since.UTC().Format(time.RFC3339), platform.CheckCommand(d))
}

// targetCheck is a target's line. The last error is left out: /readyz is
// unauthenticated and the error names the target's address; /status and
// `crproxy status` show it to authenticated callers.
func targetCheck(s reconnect.Status) string {
	switch s.State {
	case reconnect.Connected:
		return fmt.Sprintf("[+]target %s ok", s.Target)
	case reconnect.Resyncing:
		return fmt.Sprintf("[+]target %s ok: Resyncing since %s", s.Target, s.Since.UTC().Format(time.RFC3339))
	default:
		return fmt.Sprintf("[-]target %s: %s since %s", s.Target, s.State, s.Since.UTC().Format(time.RFC3339))
	}
}
