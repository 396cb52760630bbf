package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/mux"
	"k8s.io/apiserver/pkg/server/options"
	genericroutes "k8s.io/apiserver/pkg/server/routes"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/platform"
	"github.com/crproxy/crproxy/pkg/writethrough"
)

// Options configures a Server.
type Options struct {
	// Mirror holds the proxied group/versions and their caches.
	Mirror *mirror.Mirror
	// Serving is where and with which certificate to listen
	// (--bind-address, --secure-port, --cert-dir, --tls-cert-file, ...).
	Serving *options.SecureServingOptions
	// Authentication reads the client cluster's authentication ConfigMap
	// through RemoteKubeConfigFile (or the in-cluster config).
	Authentication *options.DelegatingAuthenticationOptions
	// Authorization asks the client cluster by SubjectAccessReview, through
	// RemoteKubeConfigFile (or the in-cluster config), whether a caller
	// that did not come through the aggregator may make its request.
	Authorization *options.DelegatingAuthorizationOptions
	// Platform, when set, holds the platform's permission to use each
	// target: requests of a target without it are refused.
	Platform *platform.Checker
	// Writer writes mutations through to the targets; without one,
	// writes answer 405 (a read-only mirror).
	Writer *writethrough.Writer
	// Logger logs; zap.NewNop when nil.
	Logger *zap.Logger
	// RequestTimeout bounds every request but watches
	// (DefaultRequestTimeout when 0).
	RequestTimeout time.Duration
	// MaxRequestsInFlight and MaxMutatingRequestsInFlight bound the
	// reads and writes served at once (the defaults when 0; negative: no
	// bound).
	MaxRequestsInFlight, MaxMutatingRequestsInFlight int
	// Profiling serves Go's pprof handlers under /debug/pprof/ to
	// authenticated callers (--profiling), as kube-apiserver does.
	Profiling bool
}

// Server is crproxy's HTTPS endpoint.
type Server struct {
	opts        Options
	log         *zap.Logger
	servingInfo *genericapiserver.SecureServingInfo
	authnInfo   *genericapiserver.AuthenticationInfo
	handler     http.Handler

	// authenticating is closed once Run serves with the client cluster's
	// CAs loaded; done once Run has returned.
	authenticating, done chan struct{}
}

// New prepares the listener, the certificates and the authenticator.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Server{opts: opts, log: opts.Logger, authenticating: make(chan struct{}), done: make(chan struct{})}
	if err := opts.Serving.ApplyTo(&s.servingInfo); err != nil {
		return nil, fmt.Errorf("serving: %w", err)
	}
	authn, authnInfo, err := newAuthenticator(opts.Authentication, s.servingInfo)
	if err != nil {
		return nil, err
	}
	s.authnInfo = authnInfo
	authz, err := newAuthorizer(opts.Authorization)
	if err != nil {
		return nil, err
	}
	opts.RequestTimeout = orDefault(opts.RequestTimeout, DefaultRequestTimeout)
	g := guard{
		reads:         limit(opts.MaxRequestsInFlight, DefaultMaxRequestsInFlight),
		writes:        limit(opts.MaxMutatingRequestsInFlight, DefaultMaxMutatingRequestsInFlight),
		authn:         authn,
		failed:        unauthenticated(s.clientCAsPending),
		authz:         authz,
		frontProxy:    newFrontProxyVerifier(authnInfo.RequestHeaderConfig),
		requestHeader: authnInfo.RequestHeaderConfig,
	}
	requests := newRequestMetrics(mirrorServes(opts.Mirror))
	var api http.Handler = &apiHandler{mirror: opts.Mirror, platform: opts.Platform, writer: opts.Writer, log: opts.Logger}
	api = g.wrap(api)
	api = genericapifilters.WithWarningRecorder(api)
	api = withRequestTimeout(api, opts.RequestTimeout)
	api = requests.instrument(api)
	report := func() StatusReport {
		r := buildStatus(opts.Mirror)
		r.Platform = opts.Platform.Decisions()
		r.ClientCAsPending = s.clientCAsPending()
		return r
	}
	s.handler = genericfilters.WithPanicRecovery(routes(api, g.wrap, report, newRegistry(report, requests), opts.Profiling), requestInfoResolver)
	return s, nil
}

// orDefault is v, or def when v is 0.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// limit is an in-flight bound: def for 0, none (0 for the filter) when
// negative.
func limit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// requestInfoResolver reads a request's verb, resource and path, which
// authorization and the request metrics need.
var requestInfoResolver = &request.RequestInfoFactory{APIPrefixes: sets.NewString("apis", "api"), GrouplessAPIPrefixes: sets.NewString("api")}

// routes is where every path is assigned. /livez, /healthz and /readyz
// answer without authentication, as kubelet probes need (kube-apiserver
// lets anyone read them too). /metrics and /status need a caller of the
// client cluster whom it authorizes for the path (nonResourceURLs, verb
// get, as kube-apiserver's /metrics); with profiling, so does
// /debug/pprof/. Everything else is the Kubernetes API, which api guards
// itself. guarded puts a handler behind authentication and authorization.
func routes(api http.Handler, guarded func(http.Handler) http.Handler, report func() StatusReport, reg *prometheus.Registry, profiling bool) http.Handler {
	metrics := guarded(metricsHandler(reg))
	status := guarded(statusHandler(report))
	var pprof http.Handler
	if profiling {
		m := mux.NewPathRecorderMux("crproxy-debug")
		genericroutes.Profiling{}.Install(m)
		pprof = guarded(m)
	}
	return genericapifilters.WithRequestInfo(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case "/livez", "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		case "/readyz":
			readyz(w, r, report())
		case "/metrics":
			metrics.ServeHTTP(w, r)
		case "/status":
			status.ServeHTTP(w, r)
		default:
			if pprof != nil && strings.HasPrefix(r.URL.Path, "/debug/pprof") {
				pprof.ServeHTTP(w, r)
				return
			}
			api.ServeHTTP(w, r)
		}
	}), requestInfoResolver)
}

// Address is the address the server listens on.
func (s *Server) Address() string { return s.servingInfo.Listener.Addr().String() }

// Run serves until ctx ends, then shuts down. Serving starts the
// controllers that load the client cluster's CAs; WaitUntilAuthenticating
// tells when they have.
func (s *Server) Run(ctx context.Context) error {
	defer close(s.done)
	stopped, _, err := s.servingInfo.Serve(s.handler, 10*time.Second, ctx.Done())
	if err != nil {
		return err
	}
	waitForClientCAs(ctx, s.servingInfo, s.authnInfo, s.log)
	close(s.authenticating)
	s.log.Info("serving", zap.String("address", s.Address()))
	<-stopped
	return nil
}

// clientCAsPending is true until Run has the client cluster's CAs loaded.
func (s *Server) clientCAsPending() bool {
	select {
	case <-s.authenticating:
		return false
	default:
		return true
	}
}

// WaitUntilAuthenticating returns once Run serves with the client
// cluster's CAs loaded, so callers presenting certificates are
// authenticated; an error if Run ended first or ctx ended. Register the
// APIServices only after it: a connection the aggregator opens before
// keeps a TLS handshake that asked for no client certificate, and its
// requests get 401.
func (s *Server) WaitUntilAuthenticating(ctx context.Context) error {
	select {
	case <-s.authenticating:
		return nil
	case <-s.done:
		return errors.New("the server stopped before it served")
	case <-ctx.Done():
		return ctx.Err()
	}
}
