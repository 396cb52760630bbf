package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUnauthenticated: 503 with Retry-After while the client CAs load, 401
// after; a request without a client certificate gets its connection
// closed either way, so the client's next handshake can send one, and so
// does a 401 on HTTP/2, as at the kube-apiserver.
func TestUnauthenticated(t *testing.T) {
	for _, c := range []struct {
		pending, cert, http2 bool
		code                 int
		closes               bool
	}{
		{pending: true, cert: false, code: http.StatusServiceUnavailable, closes: true},
		{pending: true, cert: true, code: http.StatusServiceUnavailable},
		{pending: false, cert: false, code: http.StatusUnauthorized, closes: true},
		{pending: false, cert: true, code: http.StatusUnauthorized},
		{pending: false, cert: true, http2: true, code: http.StatusUnauthorized, closes: true},
		{pending: true, cert: true, http2: true, code: http.StatusServiceUnavailable},
	} {
		r := httptest.NewRequest(http.MethodGet, "/apis", nil)
		if c.http2 {
			r.ProtoMajor, r.ProtoMinor, r.Proto = 2, 0, "HTTP/2.0"
		}
		r.TLS = &tls.ConnectionState{}
		if c.cert {
			r.TLS.PeerCertificates = []*x509.Certificate{{}}
		}
		rec := httptest.NewRecorder()
		unauthenticated(func() bool { return c.pending }).ServeHTTP(rec, r)
		if rec.Code != c.code || (rec.Header().Get("Connection") == "close") != c.closes {
			t.Errorf("pending %v, certificate %v, HTTP/2 %v: %d, Connection %q; want %d, close %v", c.pending, c.cert, c.http2, rec.Code, rec.Header().Get("Connection"), c.code, c.closes)
		}
		if c.pending && rec.Header().Get("Retry-After") != "1" {
			t.Errorf("pending: Retry-After %q, want 1", rec.Header().Get("Retry-After"))
		}
	}
}
