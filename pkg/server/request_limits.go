package server

import (
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
)

// Request limits, kube-apiserver's defaults (--request-timeout,
// --max-requests-inflight, --max-mutating-requests-inflight).
const (
	// DefaultRequestTimeout bounds every request but watches: a request
	// still running then is answered 504 Timeout. A caller's ?timeout=
	// may shorten it, not lengthen it.
	DefaultRequestTimeout = 60 * time.Second
	// DefaultMaxRequestsInFlight and DefaultMaxMutatingRequestsInFlight
	// bound the reads and the writes served at once (watches not
	// counted); past them a caller gets 429 with Retry-After: 1.
	DefaultMaxRequestsInFlight         = 400
	DefaultMaxMutatingRequestsInFlight = 200
)

// longRunning tells which requests the timeout and the in-flight limits
// leave alone: watches, which end by their own timeout (minWatchTimeout
// with jitter, or the caller's timeoutSeconds).
var longRunning = genericfilters.BasicLongRunningRequestCheck(sets.NewString("watch"), sets.NewString())

// statusCodecs encode the Status errors of k8s.io/apiserver's filters.
var statusCodecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(scheme)
}()

// withInFlightLimit bounds the requests next serves at once, as
// kube-apiserver's max-in-flight filter does (system:masters exempt). It
// needs the user, so it runs after authentication.
func withInFlightLimit(next http.Handler, reads, writes int) http.Handler {
	return genericfilters.WithMaxInFlightLimit(next, reads, writes, longRunning)
}

// withRequestTimeout bounds how long next may take for anything but a
// watch: the request's context ends at the deadline and the caller gets
// 504 Timeout, as from kube-apiserver. It needs the RequestInfo.
func withRequestTimeout(next http.Handler, timeout time.Duration) http.Handler {
	h := genericfilters.WithTimeoutForNonLongRunningRequests(next, longRunning)
	h = genericapifilters.WithRequestDeadline(h, nil, nil, longRunning, statusCodecs.WithoutConversion(), timeout)
	return genericapifilters.WithRequestReceivedTimestamp(h)
}
