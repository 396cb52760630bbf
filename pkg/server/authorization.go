package server

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/authorization/path"
	"k8s.io/apiserver/pkg/authorization/union"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/server/options"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
)

// newAuthorizer builds what k8s.io/apiserver's delegating authorizer is:
// members of system:masters are allowed outright, the always-allowed
// paths pass, everyone else is asked about by SubjectAccessReview in the
// client cluster (subjectAccessReviewer), whose answers are cached (10 s
// allowed, 10 s denied, as for every aggregated API server) by
// decisionCache alone. crproxy's own identity in the client cluster needs
// system:auth-delegator for that.
func newAuthorizer(opts *options.DelegatingAuthorizationOptions) (authorizer.Authorizer, error) {
	if opts == nil {
		return nil, fmt.Errorf("delegated authorization: no options")
	}
	cfg, err := reviewClientConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	reviews, err := authorizationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	a, err := delegatedAuthorizer(opts, reviews.SubjectAccessReviews(), clock.RealClock{})
	if err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	return a, nil
}

// delegatedAuthorizer is newAuthorizer's union, asking reviews.
func delegatedAuthorizer(opts *options.DelegatingAuthorizationOptions, reviews authorizationv1client.SubjectAccessReviewInterface, clock clock.PassiveClock) (authorizer.Authorizer, error) {
	opts = opts.WithAlwaysAllowGroups("system:masters")
	authorizers := []authorizer.Authorizer{authorizerfactory.NewPrivilegedGroups(opts.AlwaysAllowGroups...)}
	if len(opts.AlwaysAllowPaths) > 0 {
		paths, err := path.NewAuthorizer(opts.AlwaysAllowPaths)
		if err != nil {
			return nil, err
		}
		authorizers = append(authorizers, paths)
	}
	backoff := options.DefaultAuthWebhookRetryBackoff()
	if opts.WebhookRetryBackoff != nil {
		backoff = opts.WebhookRetryBackoff
	}
	reviewer := &subjectAccessReviewer{reviews: reviews, backoff: *backoff}
	authorizers = append(authorizers, newDecisionCache(reviewer, opts.AllowCacheTTL, opts.DenyCacheTTL, clock))
	return union.New(authorizers...), nil
}

// reviewClientConfig is the client cluster's configuration for reviews,
// as the delegating authorizer makes it: the remote kubeconfig or the
// in-cluster one, with its high rate limits (they would bound every
// request's authorization) and its timeout.
func reviewClientConfig(opts *options.DelegatingAuthorizationOptions) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if opts.RemoteKubeConfigFile != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: opts.RemoteKubeConfigFile}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = 200, 400, opts.ClientTimeout
	if opts.CustomRoundTripperFn != nil {
		cfg.Wrap(opts.CustomRoundTripperFn)
	}
	return cfg, nil
}

// withAuthorization passes on the requests that the caller may make, and
// answers 403 Forbidden, with kube-apiserver's message, to the others.
//
// A request that the client cluster's aggregator sent (its front-proxy
// certificate, see frontProxyVerifier) passes unasked: the client
// apiserver authorized its user before proxying it, as it does for every
// aggregated API server. Every other caller (a pod's token, a user's
// certificate straight at crproxy's port) is authorized here, for
// resources and for paths such as /metrics and /status alike. It runs
// after authentication, which put the user into the context, and needs the
// RequestInfo.
func withAuthorization(next http.Handler, a authorizer.Authorizer, frontProxy *frontProxyVerifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if frontProxy.sent(r) {
			next.ServeHTTP(w, r)
			return
		}
		attrs, err := genericapifilters.GetAuthorizerAttributes(r.Context())
		if err != nil {
			writeError(w, apierrors.NewInternalError(err))
			return
		}
		if covering, ok := coveringAttributes(attrs); ok {
			if decision, _, err := a.Authorize(r.Context(), covering); err == nil && decision == authorizer.DecisionAllow {
				next.ServeHTTP(w, r)
				return
			}
		}
		decision, reason, err := a.Authorize(r.Context(), attrs)
		switch {
		case decision == authorizer.DecisionAllow:
			next.ServeHTTP(w, r)
		case err != nil:
			writeError(w, apierrors.NewInternalError(fmt.Errorf("authorizing the request: %w", err)))
		default:
			writeError(w, responsewriters.ForbiddenStatusError(attrs, reason))
		}
	})
}

// coveringAttributes is, for a request on one named object, the request on
// its whole collection that the caller could send to the same effect: a
// GET of a name is a LIST with fieldSelector metadata.name (kube-apiserver
// authorizes that as list, with the name), a DELETE is a deletecollection
// with it, and a named LIST or WATCH is the same without the name. A
// caller allowed the collection request is allowed the named one under
// every authorizer, not only RBAC: it could have sent the collection
// request. Asked first, it is one SubjectAccessReview per caller, verb and
// namespace (cached as any), not one per object; when it is not allowed,
// the request's own attributes decide. Updates, patches and subresources
// have no such collection request.
func coveringAttributes(attrs authorizer.Attributes) (authorizer.Attributes, bool) {
	if !attrs.IsResourceRequest() || attrs.GetName() == "" || attrs.GetSubresource() != "" {
		return nil, false
	}
	var verb string
	switch attrs.GetVerb() {
	case "get", "list":
		verb = "list"
	case "watch":
		verb = "watch"
	case "delete":
		verb = "deletecollection"
	default:
		return nil, false
	}
	return authorizer.AttributesRecord{
		User:            attrs.GetUser(),
		Verb:            verb,
		Namespace:       attrs.GetNamespace(),
		APIGroup:        attrs.GetAPIGroup(),
		APIVersion:      attrs.GetAPIVersion(),
		Resource:        attrs.GetResource(),
		ResourceRequest: true,
	}, true
}

const (
	// frontProxyTTL is how long a certificate's front-proxy verdict is
	// reused, as certificateAuthTTL for its authentication.
	frontProxyTTL = 10 * time.Second
	// frontProxyEntries bounds the verdicts kept; only authenticated
	// callers get one.
	frontProxyEntries = 4096
)

// frontProxyVerifier tells whether a request came from the client
// cluster's aggregator: its client certificate verifies against the
// request-header CA of extension-apiserver-authentication and names one of
// its allowed names, the same test the front-proxy authenticator makes.
// Verdicts are kept by the certificate's SHA-256, so a certificate's
// requests verify the chain once per frontProxyTTL, on any connection, and
// an entry holds nothing of the caller's size. A nil verifier trusts no
// request.
type frontProxyVerifier struct {
	verify authenticator.Request
	cache  *cache.LRUExpireCache
	now    func() time.Time
}

// newFrontProxyVerifier returns the verifier of requestHeader, nil without
// a request-header configuration.
func newFrontProxyVerifier(requestHeader *authenticatorfactory.RequestHeaderConfig) *frontProxyVerifier {
	if requestHeader == nil || requestHeader.CAContentProvider == nil {
		return nil
	}
	ok := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return &authenticator.Response{}, true, nil
	})
	return &frontProxyVerifier{
		verify: x509.NewDynamicCAVerifier(requestHeader.CAContentProvider.VerifyOptions, ok, requestHeader.AllowedClientNames),
		cache:  cache.NewLRUExpireCache(frontProxyEntries),
		now:    time.Now,
	}
}

// sent reports whether the client cluster's aggregator sent r.
func (v *frontProxyVerifier) sent(r *http.Request) bool {
	if v == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	leaf := r.TLS.PeerCertificates[0]
	key := sha256.Sum256(leaf.Raw)
	if verdict, ok := v.cache.Get(key); ok {
		return verdict.(bool)
	}
	_, ok, err := v.verify.AuthenticateRequest(r)
	verdict := ok && err == nil
	if ttl := min(frontProxyTTL, leaf.NotAfter.Sub(v.now())); ttl > 0 {
		v.cache.Add(key, verdict, ttl)
	}
	return verdict
}

// guard is the filter chain of every path that needs a caller of the
// client cluster: authentication (failed answers the unauthenticated),
// then authorization.
type guard struct {
	// reads and writes bound the requests in flight after
	// authentication (0: no bound).
	reads, writes int
	authn         authenticator.Request
	failed        http.Handler
	authz         authorizer.Authorizer
	frontProxy    *frontProxyVerifier
	requestHeader *authenticatorfactory.RequestHeaderConfig
}

// wrap puts next behind the guard: authentication, the in-flight bound,
// authorization, in kube-apiserver's order. With the request-header
// configuration, authentication removes the front proxy's X-Remote-*
// headers.
func (g guard) wrap(next http.Handler) http.Handler {
	h := withAuthorization(next, g.authz, g.frontProxy)
	h = withInFlightLimit(h, g.reads, g.writes)
	return genericapifilters.WithAuthentication(h, g.authn, g.failed, nil, g.requestHeader)
}
