package platform

import (
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// RetryAfterSeconds is the Retry-After of Unavailable: about when the next
// check has an answer.
const RetryAfterSeconds = 5

// CheckCommand is the command an operator runs against the management
// cluster to see what crproxy sees, as the Resource Proxy documentation's
// troubleshooting shows it: kubectl auth can-i use
// virtualclusterinstances/<name> --as=<identity> -n p-<project>.
func CheckCommand(d Decision) string {
	return fmt.Sprintf("kubectl auth can-i %s %s/%s --as=%s -n %s", Verb, Resource, d.Name, d.Identity, Namespace(d.Project))
}

// Forbidden is the answer to a request for gr while d denies the client
// the target: 403 Forbidden, naming the missing permission and the command
// that checks it.
func Forbidden(gr schema.GroupResource, d Decision) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusForbidden,
		Reason: metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{
			Group: gr.Group,
			Kind:  gr.Resource,
		},
		Message: fmt.Sprintf("crproxy's client %q may not use target %q: it needs the verb %s on %s.%s %q in namespace %s of the platform's management cluster (check: %s)",
			d.Identity, d.Target, Verb, Resource, Group, d.Name, Namespace(d.Project), CheckCommand(d)),
	}}
}

// Unavailable is the answer to a request for gr that d cannot decide: 503
// Service Unavailable with Retry-After, while the target is Pending, or
// Unknown for a write (write) or for a read without an answer to go by. It
// names the management cluster as "the platform's management cluster",
// never by its address.
func Unavailable(gr schema.GroupResource, d Decision, write bool) *apierrors.StatusError {
	var msg string
	if d.State == Pending {
		msg = fmt.Sprintf("crproxy has not yet checked with the platform's management cluster whether client %q may use target %q", d.Identity, d.Target)
	} else {
		reason := d.Reason
		if reason == "" {
			reason = "the platform's management cluster did not answer"
		}
		msg = fmt.Sprintf("crproxy cannot check with the platform's management cluster whether client %q may use target %q: since %s, %s",
			d.Identity, d.Target, d.Since.UTC().Format(time.RFC3339), reason)
	}
	if write {
		msg += "; nothing was written (writes are not queued)"
	} else {
		msg += "; nothing is served before it has answered"
	}
	e := apierrors.NewServiceUnavailable(msg)
	e.ErrStatus.Details = &metav1.StatusDetails{Group: gr.Group, Kind: gr.Resource, RetryAfterSeconds: RetryAfterSeconds}
	return e
}

// Admit answers whether a request for gr, a write or a read, may go on
// under d: nil when it may, otherwise the error to answer with (a
// *apierrors.StatusError). Allowed admits everything; Denied nothing
// (Forbidden); Unknown admits reads when the last answer allowed (add
// Warning(d) to them), refuses them with Forbidden when it denied and with
// Unavailable when there was none, and refuses writes with Unavailable;
// Pending refuses everything with Unavailable.
func Admit(gr schema.GroupResource, d Decision, write bool) error {
	switch {
	case d.State == Allowed:
		return nil
	case d.State == Denied:
		return Forbidden(gr, d)
	case d.State == Unknown && !write && d.Allowed:
		return nil
	case d.State == Unknown && !write && !d.Answered.IsZero():
		return Forbidden(gr, d)
	default:
		return Unavailable(gr, d, write)
	}
}

// Warning is the Warning a read carries when it is served on the strength
// of the management cluster's last answer (Unknown after an answer that
// allowed); "" otherwise.
func Warning(d Decision) string {
	if d.State != Unknown || !d.Allowed {
		return ""
	}
	return fmt.Sprintf("crproxy cannot check with the platform's management cluster whether client %q may use target %q (since %s, %s); serving what was mirrored while it allowed it",
		d.Identity, d.Target, d.Since.UTC().Format(time.RFC3339), d.Reason)
}
