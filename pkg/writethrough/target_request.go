package writethrough

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/warning"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// OriginalUserExtra is the impersonation extra that carries the
// client-cluster user on every write, so the target's audit log names who
// really acted.
const OriginalUserExtra = "crproxy.dev/original-user"

// retryAfterSeconds is what a write to an unreachable target tells the
// caller to wait.
const retryAfterSeconds = 3

// targetRequest is one HTTP request to a target.
type targetRequest struct {
	method, path string
	query        url.Values
	contentType  string
	body         []byte
	// wroteNothing says that nothing of the write this request serves
	// has reached the target yet (a read before it, or after the target
	// refused it): a transport failure is then 503, nothing was written,
	// whatever the read's own fate.
	wroteNothing bool
}

// do sends r to the target as the client identity, with the caller
// recorded, and returns the target's answer whatever its status code.
// Transport failures become the Status the failure model prescribes: 503
// with Retry-After when nothing was written (the request never reached the
// target, or it is a read with r.wroteNothing), 504 when it may have been
// (the outcome is unknown). Nothing is retried here (mirror.Target.Send):
// a create sent twice could be created twice. A caller that gives up (its
// context ends) is not a failure of the target.
func (w *Writer) do(ctx context.Context, t *mirror.Target, caller string, r targetRequest) (*Response, error) {
	call := mirror.Call{Method: r.method, Path: r.path, Query: r.query, ContentType: r.contentType, Body: r.body, Timeout: w.targetTimeout}
	if caller != "" {
		call.Header = http.Header{"Impersonate-Extra-" + url.PathEscape(OriginalUserExtra): {caller}}
	}
	a, err := t.Send(ctx, call)
	var failed *mirror.CallError
	switch {
	case errors.As(err, &failed) && failed.CallerGone:
		return nil, callerGaveUp(t, failed.Sent && !r.wroteNothing)
	case errors.As(err, &failed):
		return nil, transportError(t, failed.Err, failed.Sent && !r.wroteNothing)
	case err != nil:
		return nil, apierrors.NewInternalError(err)
	}
	if a.Code == http.StatusForbidden && w.onForbidden != nil {
		w.onForbidden(t.ID)
	}
	for _, wh := range a.Warnings {
		warning.AddWarning(ctx, wh.Agent, wh.Text)
	}
	return &Response{Code: a.Code, ContentType: a.ContentType, Body: a.Body}, nil
}

// callerGaveUp is the Status for a request whose caller's context ended
// before the target answered: a timeout, not the target's failure.
func callerGaveUp(t *mirror.Target, written bool) error {
	msg := fmt.Sprintf("the request ended before target %s answered; nothing was written", t.ID)
	if written {
		msg = fmt.Sprintf("the request ended before target %s answered; the outcome of this write is unknown: read the object to learn whether it was applied", t.ID)
	}
	return apierrors.NewTimeoutError(msg, 0)
}

// transportError is the Status for a request that got no answer.
func transportError(t *mirror.Target, err error, written bool) error {
	if !written {
		e := apierrors.NewServiceUnavailable(fmt.Sprintf("target %s is unreachable, nothing was written: %s", t.ID, mirror.DescribeFailure(err)))
		e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfterSeconds}
		return e
	}
	reason := "the connection was lost after the request was sent"
	if errors.Is(err, context.DeadlineExceeded) {
		reason = "the target did not answer in time"
	}
	return outcomeUnknown(fmt.Sprintf("the outcome of this write at target %s is unknown: %s (%s); read the object to learn whether it was applied", t.ID, reason, mirror.DescribeFailure(err)))
}

// outcomeUnknown is the 504 Timeout of a write that may have been applied,
// in whole or in part: message says what the caller should read to learn.
func outcomeUnknown(message string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusGatewayTimeout,
		Reason:  metav1.StatusReasonTimeout,
		Message: message,
	}}
}

// statusError turns a target's non-2xx answer into an error carrying its
// Status (for answers crproxy inspects rather than passes on).
func statusError(resp *Response) error {
	return mirror.TargetStatusError(resp.Code, resp.Body)
}
