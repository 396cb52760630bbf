package server

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
func newAuthenticator(opts *options.DelegatingAuthenticationOptions, servingInfo *genericapiserver.SecureServingInfo) (authenticator.Request, error) {
	var info genericapiserver.AuthenticationInfo
	if err := opts.ApplyTo(&info, servingInfo, nil); err != nil {
		return nil, fmt.Errorf("delegated authentication: %w", err)
	}
	delegate := info.Authenticator
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := delegate.AuthenticateRequest(req)
		if err != nil || !ok || resp.User.GetName() == user.Anonymous {
			return nil, false, err
		}
		return resp, true, nil
	}), nil
}

// unauthorized answers 401 as a kube-apiserver does.
func unauthorized(w http.ResponseWriter, _ *http.Request) {
	writeError(w, apierrors.NewUnauthorized("Unauthorized"))
}
