package server

import (
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
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
// The key is a digest of the certificate and of every header the
// front-proxy (request-header) authentication reads, so a front proxy
// speaking for different users gets one entry per user. Requests with an
// Authorization header are not cached here (the token authenticator caches its
// TokenReviews itself), nor are failures or the anonymous fallback.
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
	// Never remember the anonymous fallback: it is what a certificate gets
	// while the client CAs are still loading, and it would stick.
	if ok && err == nil && resp.User.GetName() != user.Anonymous {
		ttl := min(certificateAuthTTL, req.TLS.PeerCertificates[0].NotAfter.Sub(c.now()))
		if ttl > 0 {
			c.cache.Add(key, resp, ttl)
		}
	}
	return resp, ok, err
}

// certificateAuthKey identifies what an authentication depended on: the
// presented certificate and the request-header authentication's headers,
// as a SHA-256 of both. A fixed-size digest rather than the parsed
// certificate or the header text: an entry holds no caller-sized data, so
// the cache's memory is bounded by its entry count alone, and the same
// certificate on a new connection finds its entry.
type certificateAuthKey [sha256.Size]byte

// key returns the request's certificateAuthKey.
func (c *certificateAuthCache) key(req *http.Request) certificateAuthKey {
	h := sha256.New()
	h.Write(req.TLS.PeerCertificates[0].Raw)
	rh := c.requestHeader
	if rh == nil {
		return certificateAuthKey(h.Sum(nil))
	}
	var names []string
	for _, p := range []interface{ Value() []string }{rh.UsernameHeaders, rh.UIDHeaders, rh.GroupHeaders} {
		if p != nil {
			names = append(names, p.Value()...)
		}
	}
	if rh.ExtraHeaderPrefixes != nil {
		for _, prefix := range rh.ExtraHeaderPrefixes.Value() {
			for name := range req.Header {
				if len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
					names = append(names, name)
				}
			}
		}
	}
	sort.Strings(names)
	// Each header and value is length-prefixed: no two header sets hash
	// the same text.
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, name := range names {
		values := req.Header.Values(name)
		if len(values) == 0 {
			continue
		}
		field(http.CanonicalHeaderKey(name))
		field(strconv.Itoa(len(values)))
		for _, v := range values {
			field(v)
		}
	}
	return certificateAuthKey(h.Sum(nil))
}
