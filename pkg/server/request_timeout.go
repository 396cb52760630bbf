package server

import (
	"context"
	"encoding/json"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"
)

// withTimeoutAnswer answers a request that its context's deadline cut
// (WithRequestDeadline sets it) as kube-apiserver's timeout filter does:
// 504 with its Timeout Status when nothing was answered yet, whatever
// next wrote after the deadline; an aborted stream when the answer had
// begun (a client must not take a cut list for a whole one). Watches
// pass untouched.
//
// Unlike kube-apiserver's filter it runs next on the request's own
// goroutine instead of a second one that it could leave behind at the
// deadline. That goroutine, the request's clone and the hand-off between
// the two cost 8 % of a consistent GET's throughput from one client
// (docs/benchmarks.md, B2). The caveat: a handler that ignores its
// context's end would hold its answer past the deadline. None here does:
// every wait (the mirror's, a shared call's) and every request to a
// target or to the client cluster ends with the request's context.
func withTimeoutAnswer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := request.RequestInfoFrom(r.Context())
		if !ok || longRunning(r, info) {
			next.ServeHTTP(w, r)
			return
		}
		dw := &deadlineWriter{ResponseWriter: w, ctx: r.Context()}
		if h := w.Header(); len(h) > 0 {
			dw.outer = h.Clone()
		}
		next.ServeHTTP(responsewriter.WrapForHTTP1Or2(dw), r)
		dw.finish()
	})
}

// timeoutStatus is kube-apiserver's answer to a request its deadline cut.
var timeoutStatus = apierrors.NewTimeoutError("request did not complete within the allotted timeout", 0).ErrStatus

// deadlineWriter passes a handler's answer on until the request's
// deadline; from then on writes fail with http.ErrHandlerTimeout. It is
// used by the request's goroutine only.
type deadlineWriter struct {
	http.ResponseWriter
	ctx context.Context
	// outer are the headers set before next ran: a timeout answer keeps
	// them and drops next's.
	outer       http.Header
	wroteHeader bool
	timedOut    bool
}

// expired reports, and remembers, that the request's deadline passed.
func (w *deadlineWriter) expired() bool {
	if !w.timedOut && w.ctx.Err() == context.DeadlineExceeded {
		w.timedOut = true
	}
	return w.timedOut
}

// Unwrap implements responsewriter.UserProvidedDecorator.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader implements http.ResponseWriter.
func (w *deadlineWriter) WriteHeader(code int) {
	if w.wroteHeader || w.expired() {
		return
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.expired() {
		return 0, http.ErrHandlerTimeout
	}
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher.
func (w *deadlineWriter) Flush() {
	if w.timedOut {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// finish answers for a handler that returned after the deadline.
func (w *deadlineWriter) finish() {
	if !w.expired() {
		return
	}
	if w.wroteHeader {
		// As kube-apiserver's filter: the stream is reset (HTTP/2) or
		// the connection closed, and the server logs nothing.
		panic(http.ErrAbortHandler)
	}
	// As kube-apiserver's filter, with no Content-Type (the server sniffs
	// one).
	h := w.ResponseWriter.Header()
	for k := range h {
		delete(h, k)
	}
	for k, v := range w.outer {
		h[k] = v
	}
	w.ResponseWriter.WriteHeader(http.StatusGatewayTimeout)
	_ = json.NewEncoder(w.ResponseWriter).Encode(&timeoutStatus)
}
