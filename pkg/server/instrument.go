package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// requestMetrics counts and times the API requests crproxy answers.
type requestMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// serves tells whether group/version/resource (and its subresource,
	// "" for none) is served here. Nothing else a caller writes in a
	// path becomes a label value: each one would be a new series kept
	// for crproxy's life, and a caller that is not even authenticated
	// could grow its memory without bound (a 20 KB unique subresource
	// per request kept about 36 KB).
	serves func(group, version, resource, subresource string) bool
}

func newRequestMetrics(serves func(group, version, resource, subresource string) bool) *requestMetrics {
	labels := []string{"verb", "resource", "code"}
	return &requestMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crproxy_requests_total",
			Help: "API requests answered, by verb, resource (resource.group, \"\" for discovery, OpenAPI and unknown paths) and HTTP status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "crproxy_request_duration_seconds",
			Help: "Time to answer an API request; for a watch, the time until its response headers were sent.",
			// The kube-apiserver's buckets up to a minute.
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60},
		}, labels),
		serves: serves,
	}
}

// mirrorServes is requestMetrics.serves for m.
func mirrorServes(m *mirror.Mirror) func(group, version, resource, subresource string) bool {
	return func(group, version, resource, subresource string) bool {
		gv := m.GroupVersion(group, version)
		if gv == nil {
			return false
		}
		res := gv.Resource(resource)
		return res != nil && res.ServesSubresource(subresource)
	}
}

func (m *requestMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.total, m.duration)
}

// knownVerbs are the verb label's values; any other method (a non-resource
// request's verb is its method) counts as "other".
var knownVerbs = map[string]bool{
	"get": true, "list": true, "watch": true, "create": true, "update": true, "patch": true,
	"delete": true, "deletecollection": true, "head": true, "post": true, "put": true, "options": true,
}

// labels are a request's verb and resource label values. It needs the
// RequestInfo, so instrument runs inside WithRequestInfo.
func (m *requestMetrics) labels(r *http.Request) (verb, resource string) {
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok {
		return "other", ""
	}
	verb = info.Verb
	if !knownVerbs[verb] {
		verb = "other"
	}
	if info.IsResourceRequest && m.serves(info.APIGroup, info.APIVersion, info.Resource, info.Subresource) {
		resource = info.Resource + "." + info.APIGroup
		if info.Subresource != "" {
			resource += "/" + info.Subresource
		}
	}
	return verb, resource
}

// instrument observes every request next answers, rejected ones (401)
// included. A watch is observed when its headers are sent: its duration
// is the time it took to start, not how long the client kept it open.
func (m *requestMetrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verb, resource := m.labels(r)
		rec := &recordingWriter{ResponseWriter: w, start: time.Now()}
		rec.observe = func(code int) {
			labels := []string{verb, resource, strconv.Itoa(code)}
			m.total.WithLabelValues(labels...).Inc()
			m.duration.WithLabelValues(labels...).Observe(time.Since(rec.start).Seconds())
		}
		rec.atHeaders = verb == "watch"
		defer func() {
			if p := recover(); p != nil {
				// WithPanicRecovery, outside, answers 500.
				rec.finish(http.StatusInternalServerError)
				panic(p)
			}
			rec.finish(http.StatusOK)
		}()
		next.ServeHTTP(responsewriter.WrapForHTTP1Or2(rec), r)
	})
}

// recordingWriter notes the status code of a response and observes the
// request once: when its headers go out (atHeaders) or when it ends.
type recordingWriter struct {
	http.ResponseWriter
	start     time.Time
	atHeaders bool
	observe   func(code int)

	once sync.Once
	code int
}

// Unwrap implements responsewriter.UserProvidedDecorator.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader implements http.ResponseWriter.
func (w *recordingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
		if w.atHeaders {
			w.once.Do(func() { w.observe(code) })
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// finish observes the request if it was not yet: with its status code, or
// with code when no header was written.
func (w *recordingWriter) finish(code int) {
	if w.code != 0 {
		code = w.code
	}
	w.once.Do(func() { w.observe(code) })
}
