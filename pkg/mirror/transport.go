package mirror

import (
	"errors"
	"io"
	"net/http"
	"strings"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// failFast wraps a target's transport so that a broken connection is not
// retried by client-go. client-go retries a GET that failed with a reset,
// a closed connection or an EOF ten times, a second apart (and answers a
// watch that failed so with an empty watch): a consistent read, a discovery
// or a probe then held its caller for ten seconds while the target was cut
// off. crproxy retries instead, on the target's backoff (pkg/reconnect),
// and tells readers and writers at once.
func failFast(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			if how := brokenConnection(err); how != "" {
				return nil, &connectionBrokeError{how: how}
			}
		}
		return resp, err
	})
}

// recordFailures wraps a target's transport so that every request that
// gets no answer, whoever sent it (the mirror, a write, a namespace check,
// printer columns, OpenAPI, a probe), marks the target unreachable on its
// tracker. A request whose context had ended is not counted: a caller that
// gave up says nothing about the target. Answers, whatever their code, are
// left to the callers that understand them (a 403 of a CRD read is not the
// identity being refused).
func recordFailures(rt http.RoundTripper, tracker func() *reconnect.Tracker) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err != nil && req.Context().Err() == nil {
			if t := tracker(); t != nil {
				t.Observe(err)
			}
		}
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// brokenConnection tells how the connection broke, for the errors
// client-go retries GETs on; "" for every other error.
func brokenConnection(err error) string {
	switch {
	case utilnet.IsConnectionReset(err) || strings.Contains(err.Error(), "connection reset by peer"):
		return "was reset"
	case utilnet.IsHTTP2ConnectionLost(err) || strings.Contains(err.Error(), "GOAWAY"):
		return "was lost (HTTP/2)"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || utilnet.IsProbableEOF(err):
		return "was closed before the answer"
	}
	return ""
}

// connectionBrokeError is a broken connection to a target, worded and
// typed so that client-go's retry checks (which match io.EOF, ECONNRESET
// and a few messages) do not recognize it: it does not unwrap, and its
// message names none of them. reconnect.Classify counts it as unreachable,
// as every transport error.
type connectionBrokeError struct{ how string }

func (e *connectionBrokeError) Error() string { return "the connection to the target " + e.how }
