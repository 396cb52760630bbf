package platform

import (
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var myresources = schema.GroupResource{Group: "example.com", Resource: "myresources"}

// decision is a decision on the documentation's target for the
// documentation's client.
func decision(state State, allowed bool, answered bool) Decision {
	d := Decision{
		Target: "default/target", Name: "target", Project: "default", Identity: identity,
		State: state, Allowed: allowed, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if answered {
		d.Answered = d.Since.Add(-time.Minute)
	}
	if state == Unknown {
		d.Reason = "the connection to the platform's management cluster was refused"
		d.LastError = "dial tcp 10.1.2.3:6443: connect: connection refused"
	}
	return d
}

func TestForbidden(t *testing.T) {
	err := Forbidden(myresources, decision(Denied, false, true))
	want := `crproxy's client "loft:vcluster:p-default:client" may not use target "default/target": ` +
		`it needs the verb use on virtualclusterinstances.management.loft.sh "target" in namespace p-default of the platform's management cluster ` +
		`(check: kubectl auth can-i use virtualclusterinstances/target --as=loft:vcluster:p-default:client -n p-default)`
	if err.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", err.Error(), want)
	}
	if !apierrors.IsForbidden(err) || err.ErrStatus.Code != http.StatusForbidden || err.ErrStatus.Status != metav1.StatusFailure {
		t.Errorf("status %+v, want 403 Forbidden", err.ErrStatus)
	}
	if d := err.ErrStatus.Details; d == nil || d.Group != "example.com" || d.Kind != "myresources" {
		t.Errorf("details %+v", d)
	}

	cross := Decision{Target: "other-project/target", Name: "target", Project: "other-project", Identity: identity, State: Denied}
	if msg := Forbidden(myresources, cross).Error(); !strings.Contains(msg, `in namespace p-other-project`) ||
		!strings.HasSuffix(msg, "(check: kubectl auth can-i use virtualclusterinstances/target --as=loft:vcluster:p-default:client -n p-other-project)") {
		t.Errorf("cross-project message %s", msg)
	}
}

func TestUnavailable(t *testing.T) {
	for _, tt := range []struct {
		name  string
		d     Decision
		write bool
		want  []string
	}{
		{"unknown write", decision(Unknown, true, true), true, []string{
			`crproxy cannot check with the platform's management cluster whether client "loft:vcluster:p-default:client" may use target "default/target": ` +
				`since 2026-01-02T03:04:05Z, the connection to the platform's management cluster was refused; nothing was written (writes are not queued)`,
		}},
		{"unknown read without answer", decision(Unknown, false, false), false, []string{"nothing is served before it has answered"}},
		{"pending", decision(Pending, false, false), false, []string{`crproxy has not yet checked with the platform's management cluster whether client "loft:vcluster:p-default:client" may use target "default/target"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Unavailable(myresources, tt.d, tt.write)
			if !apierrors.IsServiceUnavailable(err) || err.ErrStatus.Code != http.StatusServiceUnavailable {
				t.Errorf("status %+v, want 503", err.ErrStatus)
			}
			if d := err.ErrStatus.Details; d == nil || d.RetryAfterSeconds != RetryAfterSeconds || d.Group != "example.com" || d.Kind != "myresources" {
				t.Errorf("details %+v, want Retry-After %d", d, RetryAfterSeconds)
			}
			if s, ok := apierrors.SuggestsClientDelay(err); !ok || s != RetryAfterSeconds {
				t.Errorf("SuggestsClientDelay = %d, %v", s, ok)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message\n%s\ndoes not contain\n%s", err.Error(), w)
				}
			}
			if strings.Contains(err.Error(), "10.1.2.3") {
				t.Errorf("message names the address: %s", err.Error())
			}
		})
	}
}

// TestAdmit is the failure model, decision by decision.
func TestAdmit(t *testing.T) {
	const ok, forbidden, unavailable = 200, 403, 503
	for _, tt := range []struct {
		name        string
		d           Decision
		read, write int
		warns       bool
	}{
		{"allowed", decision(Allowed, true, true), ok, ok, false},
		{"denied", decision(Denied, false, true), forbidden, forbidden, false},
		{"unknown, last allowed", decision(Unknown, true, true), ok, unavailable, true},
		{"unknown, last denied", decision(Unknown, false, true), forbidden, unavailable, false},
		{"unknown, never answered", decision(Unknown, false, false), unavailable, unavailable, false},
		{"pending", decision(Pending, false, false), unavailable, unavailable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code := func(err error) int {
				if err == nil {
					return ok
				}
				return int(err.(apierrors.APIStatus).Status().Code)
			}
			if got := code(Admit(myresources, tt.d, false)); got != tt.read {
				t.Errorf("read: %d, want %d", got, tt.read)
			}
			if got := code(Admit(myresources, tt.d, true)); got != tt.write {
				t.Errorf("write: %d, want %d", got, tt.write)
			}
			if got := tt.d.MayRead(); got != (tt.read == ok) {
				t.Errorf("MayRead() = %v", got)
			}
			if got := tt.d.MayWrite(); got != (tt.write == ok) {
				t.Errorf("MayWrite() = %v", got)
			}
			w := Warning(tt.d)
			if (w != "") != tt.warns {
				t.Errorf("Warning() = %q", w)
			}
			if tt.warns && (!strings.Contains(w, `target "default/target"`) || !strings.Contains(w, "was refused") || strings.Contains(w, "10.1.2.3")) {
				t.Errorf("Warning() = %q", w)
			}
		})
	}
	// A nil error comes back as a nil interface.
	var err error = Admit(myresources, decision(Allowed, true, true), true)
	if err != nil {
		t.Errorf("Admit of an allowed write = %#v", err)
	}
}
