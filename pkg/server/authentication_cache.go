package server

import (
	"crypto/sha256"
	"net/http"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
)

const (
	// certificateAuthTTL is how long a certificate's authentication is
	// reused: as long as kube-apiserver's webhook token cache keeps a
	// TokenReview's answer by default, and never past the certificate's
	// NotAfter.
	certificateAuthTTL = 10 * time.Second
	// certificateAuthEntries bounds the cache: one entry per distinct
	// certificate and front-proxy identity.
	certificateAuthEntries = 4096
)

// certificateAuthCache remembers successful authentications by client
// certificate. k8s.io/apiserver verifies the certificate chain of every
// request again (an ECDSA or RSA signature check per request), which the
// profile of B2 (GET by name, 64 clients) showed as two thirds of crproxy's
// CPU. The TLS handshake has already proved that the caller holds the
// certificate's key; what is reused here is only the chain's verification
// and the identity it gave, for certificateAuthTTL.
//
// The key is the certificate and every header the front-proxy
// (request-header) authentication reads, so a front proxy speaking for
// different users gets one entry per user. Requests with an Authorization
// header are not cached here (the token authenticator caches its
// TokenReviews itself), nor are failures.
type certificateAuthCache struct {
	delegate      authenticator.Request
	requestHeader *authenticatorfactory.RequestHeaderConfig
	cache         *cache.LRUExpireCache
	now           func() time.Time
}

func newCertificateAuthCache(delegate authenticator.Request, requestHeader *authenticatorfactory.RequestHeaderConfig) *certificateAuthCache {
	return &certificateAuthCache{delegate: delegate, requestHeader: requestHeader, cache: cache.NewLRUExpireCache(certificateAuthEntries), now: time.Now}
}

// AuthenticateRequest implements authenticator.Request.
func (c *certificateAuthCache) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 || req.Header.Get("Authorization") != "" {
		return c.delegate.AuthenticateRequest(req)
	}
	key := c.key(req)
	if resp, ok := c.cache.Get(key); ok {
		return resp.(*authenticator.Response), true, nil
	}
	resp, ok, err := c.delegate.AuthenticateRequest(req)
	if ok && err == nil {
		ttl := min(certificateAuthTTL, req.TLS.PeerCertificates[0].NotAfter.Sub(c.now()))
		if ttl > 0 {
			c.cache.Add(key, resp, ttl)
		}
	}
	return resp, ok, err
}

// key hashes the presented certificate chain and the request-header
// authentication's headers.
func (c *certificateAuthCache) key(req *http.Request) [sha256.Size]byte {
	h := sha256.New()
	for _, cert := range req.TLS.PeerCertificates {
		h.Write(cert.Raw)
		h.Write([]byte{0})
	}
	if rh := c.requestHeader; rh != nil {
		var names []string
		for _, p := range []interface{ Value() []string }{rh.UsernameHeaders, rh.UIDHeaders, rh.GroupHeaders} {
			if p != nil {
				names = append(names, p.Value()...)
			}
		}
		var prefixes []string
		if rh.ExtraHeaderPrefixes != nil {
			prefixes = rh.ExtraHeaderPrefixes.Value()
		}
		for name := range req.Header {
			for _, prefix := range prefixes {
				if strings.HasPrefix(strings.ToLower(name), strings.ToLower(prefix)) {
					names = append(names, name)
				}
			}
		}
		sort.Strings(names)
		for _, name := range names {
			h.Write([]byte(http.CanonicalHeaderKey(name)))
			h.Write([]byte{0})
			for _, v := range req.Header.Values(name) {
				h.Write([]byte(v))
				h.Write([]byte{0})
			}
			h.Write([]byte{1})
		}
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}
