package writethrough

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
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
// (the outcome is unknown). Nothing is
// retried here: a create sent twice could be created twice. A caller that
// gives up (its context ends) is not a failure of the target: the target's
// health is left as it is.
func (w *Writer) do(ctx context.Context, t *mirror.Target, caller string, r targetRequest) (*Response, error) {
	callerCtx := ctx
	observe := func(err error) {
		if callerCtx.Err() == nil {
			t.Connection.Observe(err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, w.targetTimeout)
	defer cancel()
	// written tells whether the last attempt sent the request: net/http
	// retries a request written to an idle connection the server had
	// already closed (it then knows the server never read it) on a new
	// connection, and only that last attempt counts.
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { written.Store(false) },
		WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) },
	})
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	httpReq, err := t.NewRequest(ctx, r.method, r.path, r.query, body)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if r.contentType != "" {
		httpReq.Header.Set("Content-Type", r.contentType)
	}
	if caller != "" {
		httpReq.Header.Set("Impersonate-Extra-"+url.PathEscape(OriginalUserExtra), caller)
	}
	// fail answers a request that got no answer: a caller that left is
	// told so, anything else is the target's failure.
	fail := func(err error, written bool) (*Response, error) {
		if callerCtx.Err() != nil {
			return nil, callerGaveUp(t, written)
		}
		err = transportError(t, err, written)
		observe(err)
		return nil, err
	}
	resp, err := t.Do(httpReq)
	if err != nil {
		var opErr *net.OpError
		dialFailed := errors.As(err, &opErr) && opErr.Op == "dial"
		return fail(err, written.Load() && !dialFailed && !r.wroteNothing)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fail(err, !r.wroteNothing)
	}
	observe(nil)
	if resp.StatusCode == http.StatusForbidden && w.onForbidden != nil {
		w.onForbidden(t.ID)
	}
	if warnings, _ := utilnet.ParseWarningHeaders(resp.Header.Values("Warning")); len(warnings) > 0 {
		for _, wh := range warnings {
			warning.AddWarning(ctx, wh.Agent, wh.Text)
		}
	}
	return &Response{Code: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: data}, nil
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
