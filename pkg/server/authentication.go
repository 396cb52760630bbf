package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/options"
)

// newAuthenticator builds k8s.io/apiserver's delegating authenticator from
// the client cluster's kube-system/extension-apiserver-authentication
// ConfigMap: the aggregator's front-proxy certificate (request-header CA and
// allowed names), client certificates of the client cluster's CA, and bearer
// tokens by TokenReview. It also gives servingInfo the client CAs, so the
// TLS handshake asks for certificates. Anonymous requests are refused: the
// delegating authenticator admits them, an aggregated server must not.
// Certificate authentications are reused briefly (certificateAuthCache).
func newAuthenticator(opts *options.DelegatingAuthenticationOptions, servingInfo *genericapiserver.SecureServingInfo) (authenticator.Request, *genericapiserver.AuthenticationInfo, error) {
	var info genericapiserver.AuthenticationInfo
	if err := opts.ApplyTo(&info, servingInfo, nil); err != nil {
		return nil, nil, fmt.Errorf("delegated authentication: %w", err)
	}
	delegate := newCertificateAuthCache(info.Authenticator, info.RequestHeaderConfig)
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := delegate.AuthenticateRequest(req)
		if err != nil || !ok || resp.User.GetName() == user.Anonymous {
			return nil, false, err
		}
		return resp, true, nil
	}), &info, nil
}

// clientCAsTimeout bounds the wait for the client cluster's CAs at start.
const clientCAsTimeout = 30 * time.Second

// waitForClientCAs waits until the client cluster's CA bundles
// (client-ca-file and requestheader-client-ca-file of
// extension-apiserver-authentication) are loaded. SecureServingInfo.Serve
// starts their controllers, after adding the TLS configuration as their
// listener (starting them earlier races with that); until they have loaded,
// the TLS handshake asks for no client certificate the client cluster
// issued, and such connections stay unauthenticated.
func waitForClientCAs(ctx context.Context, servingInfo *genericapiserver.SecureServingInfo, info *genericapiserver.AuthenticationInfo, log *zap.Logger) {
	if servingInfo.ClientCA == nil || info.RequestHeaderConfig == nil {
		return
	}
	requestHeader := info.RequestHeaderConfig.CAContentProvider
	wait, cancel := context.WithTimeout(ctx, clientCAsTimeout)
	defer cancel()
	for {
		header := requestHeader.CurrentCABundleContent()
		// The union holds the client CA and the request-header CA: both are
		// loaded when it holds more than the request-header CA alone.
		if len(header) > 0 && len(servingInfo.ClientCA.CurrentCABundleContent()) > len(header) {
			// The TLS configuration follows the bundles asynchronously
			// (a listener's queue): give it a moment.
			select {
			case <-wait.Done():
			case <-time.After(tlsConfigSettle):
			}
			return
		}
		select {
		case <-wait.Done():
			log.Warn("the client cluster's CA bundles did not load in time; callers may get 401 until they do", zap.Duration("waited", clientCAsTimeout))
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tlsConfigSettle is how long the TLS configuration is given to take up
// newly loaded CA bundles.
const tlsConfigSettle = 200 * time.Millisecond

// unauthenticated answers a request no authenticator accepted: 401 as a
// kube-apiserver does, or, until the client cluster's CAs are loaded (the
// caller's certificate cannot be checked yet), 503 with Retry-After. A
// request that presented no client certificate also gets its connection
// closed (Connection: close; a GOAWAY on HTTP/2): a TLS handshake made
// while the CA list was still incomplete named no CA that issued the
// caller's certificate, so the client sent none, and every later request
// on that connection would stay unauthenticated. A 401 on HTTP/2 closes
// its connection too, as at the kube-apiserver.
func unauthenticated(caPending func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pending := caPending()
		noCertificate := r.TLS == nil || len(r.TLS.PeerCertificates) == 0
		// On HTTP/2, as the kube-apiserver's
		// UnauthenticatedHTTP2DOSMitigation: an unauthenticated caller
		// does not keep a connection whose streams are cheap to open and
		// costly to serve (CVE-2023-44487).
		if noCertificate || (r.ProtoMajor == 2 && !pending) {
			w.Header().Set("Connection", "close")
		}
		if pending {
			err := apierrors.NewServiceUnavailable("crproxy is loading the client cluster's CA bundles")
			err.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
			writeError(w, err)
			return
		}
		writeError(w, apierrors.NewUnauthorized("Unauthorized"))
	})
}
