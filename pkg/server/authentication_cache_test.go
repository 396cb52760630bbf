package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
)

func TestCertificateAuthCache(t *testing.T) {
	calls := 0
	fail, anonymous := false, false
	delegate := authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		calls++
		if fail || r.TLS == nil {
			return nil, false, nil
		}
		if anonymous {
			return &authenticator.Response{User: &user.DefaultInfo{Name: user.Anonymous}}, true, nil
		}
		return &authenticator.Response{User: &user.DefaultInfo{Name: r.Header.Get("X-Remote-User") + "|" + r.TLS.PeerCertificates[0].Subject.CommonName}}, true, nil
	})
	header := &authenticatorfactory.RequestHeaderConfig{
		UsernameHeaders:     headerrequest.StaticStringSlice{"X-Remote-User"},
		UIDHeaders:          headerrequest.StaticStringSlice{"X-Remote-Uid"},
		GroupHeaders:        headerrequest.StaticStringSlice{"X-Remote-Group"},
		ExtraHeaderPrefixes: headerrequest.StaticStringSlice{"X-Remote-Extra-"},
	}
	c := newCertificateAuthCache(delegate, header)
	cert := func(raw string, valid time.Duration) *x509.Certificate {
		return &x509.Certificate{Raw: []byte(raw), NotAfter: time.Now().Add(valid)}
	}
	long := cert("alice-cert", time.Hour)
	long2 := cert("carol-cert", time.Hour)
	request := func(cert *x509.Certificate, headers ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/apis", nil)
		if cert != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		}
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Add(headers[i], headers[i+1])
		}
		return r
	}
	expect := func(what string, r *http.Request, wantCalls int, wantUser string) {
		t.Helper()
		resp, ok, err := c.AuthenticateRequest(r)
		if calls != wantCalls {
			t.Errorf("%s: delegate called %d times in all, want %d", what, calls, wantCalls)
		}
		got := ""
		if ok && err == nil {
			got = resp.User.GetName()
		}
		if got != wantUser {
			t.Errorf("%s: user %q, want %q", what, got, wantUser)
		}
	}
	expect("first request", request(long), 1, "|")
	expect("same certificate again", request(long), 1, "|")
	expect("a different certificate", request(cert("bob-cert", time.Hour)), 2, "|")
	expect("front proxy for alice", request(long, "X-Remote-User", "alice"), 3, "alice|")
	expect("front proxy for alice again", request(long, "X-Remote-User", "alice"), 3, "alice|")
	expect("front proxy for bob", request(long, "X-Remote-User", "bob"), 4, "bob|")
	expect("alice with a group", request(long, "X-Remote-User", "alice", "X-Remote-Group", "admins"), 5, "alice|")
	expect("alice with an extra", request(long, "X-Remote-User", "alice", "X-Remote-Extra-Scopes", "x"), 6, "alice|")
	expect("a bearer token is never cached", request(long, "Authorization", "Bearer t"), 7, "|")
	expect("a bearer token is never cached, again", request(long, "Authorization", "Bearer t"), 8, "|")
	expect("no certificate", request(nil), 9, "")

	fail = true
	failing := cert("mallory-cert", time.Hour)
	expect("a failure", request(failing), 10, "")
	expect("a failure is not remembered", request(failing), 11, "")

	fail = false
	anonymous = true
	expect("the anonymous fallback (CAs still loading)", request(long2), 12, "system:anonymous")
	expect("the anonymous fallback is not remembered", request(long2), 13, "system:anonymous")
	anonymous = false

	expiring := cert("short-cert", 50*time.Millisecond)
	expect("a certificate about to expire", request(expiring), 14, "|")
	time.Sleep(100 * time.Millisecond)
	expect("not reused past the certificate's NotAfter", request(expiring), 15, "|")
}
