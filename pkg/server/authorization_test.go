package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// allowAll allows every request, for tests of other filters.
var allowAll = authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	return authorizer.DecisionAllow, "", nil
})

// testCA is a CA that issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// recordingAuthorizer answers decision and counts the questions.
type recordingAuthorizer struct {
	decision authorizer.Decision
	err      error
	asked    []authorizer.Attributes
}

func (a *recordingAuthorizer) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.asked = append(a.asked, attrs)
	return a.decision, "", a.err
}

// An authenticated caller that did not come through the aggregator is
// authorized for its request: allowed, it is served; denied, it gets
// kube-apiserver's 403; when the authorizer fails, 500 and nothing served.
// A front-proxy request is served without asking.
func TestWithAuthorization(t *testing.T) {
	frontProxyCA, clientCA := newTestCA(t, "front-proxy-ca"), newTestCA(t, "client-ca")
	verifier := newFrontProxyVerifier(&authenticatorfactory.RequestHeaderConfig{
		CAContentProvider:  mustCAContent(t, frontProxyCA.pem),
		AllowedClientNames: headerrequest.StaticStringSlice{"front-proxy-client"},
	})
	aggregator := frontProxyCA.issue(t, "front-proxy-client")
	otherProxy := frontProxyCA.issue(t, "not-allowed")
	userCert := clientCA.issue(t, "front-proxy-client") // the right name from the wrong CA

	for _, c := range []struct {
		name     string
		cert     *x509.Certificate
		authz    *recordingAuthorizer
		code     int
		asked    int
		wantText string
	}{
		{"allowed", userCert, &recordingAuthorizer{decision: authorizer.DecisionAllow}, http.StatusTeapot, 1, ""},
		{"denied", userCert, &recordingAuthorizer{decision: authorizer.DecisionNoOpinion}, http.StatusForbidden, 1,
			`myresources.example.com is forbidden: User "eve" cannot list resource "myresources" in API group "example.com" in the namespace "ns"`},
		{"authorizer fails", userCert, &recordingAuthorizer{err: errors.New("SubjectAccessReview: connection refused")}, http.StatusInternalServerError, 1, ""},
		{"the aggregator", aggregator, &recordingAuthorizer{}, http.StatusTeapot, 0, ""},
		{"front-proxy CA, name not allowed", otherProxy, &recordingAuthorizer{}, http.StatusForbidden, 1, ""},
		{"no certificate", nil, &recordingAuthorizer{}, http.StatusForbidden, 1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			served := false
			h := withAuthorization(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served = true
				w.WriteHeader(http.StatusTeapot)
			}), c.authz, verifier)
			r := httptest.NewRequest(http.MethodGet, "/apis/example.com/v1/namespaces/ns/myresources", nil)
			r.TLS = &tls.ConnectionState{}
			if c.cert != nil {
				r.TLS.PeerCertificates = []*x509.Certificate{c.cert}
			}
			ctx := request.WithUser(r.Context(), &user.DefaultInfo{Name: "eve"})
			info, _ := requestInfoResolver.NewRequestInfo(r)
			r = r.WithContext(request.WithRequestInfo(ctx, info))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != c.code || len(c.authz.asked) != c.asked || served != (c.code == http.StatusTeapot) {
				t.Fatalf("code %d, asked %d, served %v; want %d, %d", rec.Code, len(c.authz.asked), served, c.code, c.asked)
			}
			if c.code == http.StatusTeapot {
				return
			}
			var st metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != c.code {
				t.Fatalf("body %s: not a Status of %d (%v)", rec.Body, c.code, err)
			}
			if c.wantText != "" && st.Message != c.wantText {
				t.Errorf("message %q, want %q", st.Message, c.wantText)
			}
			if c.code == http.StatusForbidden && st.Reason != metav1.StatusReasonForbidden {
				t.Errorf("reason %q, want Forbidden", st.Reason)
			}
		})
	}
}

// The verdict on a certificate is kept: the chain is verified once per
// connection, not per request.
func TestFrontProxyVerdictCached(t *testing.T) {
	ca := newTestCA(t, "front-proxy-ca")
	v := newFrontProxyVerifier(&authenticatorfactory.RequestHeaderConfig{
		CAContentProvider:  mustCAContent(t, ca.pem),
		AllowedClientNames: headerrequest.StaticStringSlice{"front-proxy-client"},
	})
	calls := 0
	inner := v.verify
	v.verify = authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		calls++
		return inner.AuthenticateRequest(r)
	})
	r := httptest.NewRequest(http.MethodGet, "/apis", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{ca.issue(t, "front-proxy-client")}}
	for range 3 {
		if !v.sent(r) {
			t.Fatal("the aggregator's certificate is not trusted")
		}
	}
	if calls != 1 {
		t.Errorf("verified %d times, want once", calls)
	}
	if newFrontProxyVerifier(nil).sent(r) {
		t.Error("without a request-header configuration, a request is trusted")
	}
}

func mustCAContent(t *testing.T, caPEM []byte) dynamiccertificates.CAContentProvider {
	t.Helper()
	p, err := dynamiccertificates.NewStaticCAContent("test", caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A request on one object is allowed when the caller may make the
// collection request that has the same effect (list for a get, a
// deletecollection for a delete), asked first so a caller costs one
// SubjectAccessReview per namespace, not one per object; otherwise the
// request's own attributes decide, and a denial names them. Writes
// without a collection equivalent and subresources are asked as they are.
func TestCoveringCollectionCheck(t *testing.T) {
	type q struct{ verb, ns, name, sub string }
	for _, c := range []struct {
		name    string
		method  string
		path    string
		allowed []q
		code    int
		asked   []q
	}{
		{"get, list allowed", http.MethodGet, "/apis/example.com/v1/namespaces/ns/myresources/x",
			[]q{{"list", "ns", "", ""}}, http.StatusTeapot, []q{{"list", "ns", "", ""}}},
		{"get, only that name allowed", http.MethodGet, "/apis/example.com/v1/namespaces/ns/myresources/x",
			[]q{{"get", "ns", "x", ""}}, http.StatusTeapot, []q{{"list", "ns", "", ""}, {"get", "ns", "x", ""}}},
		{"get, list allowed in another namespace", http.MethodGet, "/apis/example.com/v1/namespaces/ns/myresources/x",
			[]q{{"list", "other", "", ""}}, http.StatusForbidden, []q{{"list", "ns", "", ""}, {"get", "ns", "x", ""}}},
		{"delete, deletecollection allowed", http.MethodDelete, "/apis/example.com/v1/namespaces/ns/myresources/x",
			[]q{{"deletecollection", "ns", "", ""}}, http.StatusTeapot, []q{{"deletecollection", "ns", "", ""}}},
		{"delete, only list allowed", http.MethodDelete, "/apis/example.com/v1/namespaces/ns/myresources/x",
			[]q{{"list", "ns", "", ""}}, http.StatusForbidden, []q{{"deletecollection", "ns", "", ""}, {"delete", "ns", "x", ""}}},
		{"update has no collection request", http.MethodPut, "/apis/example.com/v1/namespaces/ns/myresources/x",
			[]q{{"list", "ns", "", ""}, {"deletecollection", "ns", "", ""}}, http.StatusForbidden, []q{{"update", "ns", "x", ""}}},
		{"a subresource is asked as it is", http.MethodGet, "/apis/example.com/v1/namespaces/ns/myresources/x/status",
			[]q{{"list", "ns", "", ""}}, http.StatusForbidden, []q{{"get", "ns", "x", "status"}}},
		{"watch of one object", http.MethodGet, "/apis/example.com/v1/namespaces/ns/myresources?watch=1&fieldSelector=metadata.name%3Dx",
			[]q{{"watch", "ns", "", ""}}, http.StatusTeapot, []q{{"watch", "ns", "", ""}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var asked []q
			a := authorizer.AuthorizerFunc(func(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
				got := q{attrs.GetVerb(), attrs.GetNamespace(), attrs.GetName(), attrs.GetSubresource()}
				asked = append(asked, got)
				for _, ok := range c.allowed {
					if ok == got {
						return authorizer.DecisionAllow, "", nil
					}
				}
				return authorizer.DecisionNoOpinion, "", nil
			})
			served := false
			h := withAuthorization(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served = true
				w.WriteHeader(http.StatusTeapot)
			}), a, nil)
			r := httptest.NewRequest(c.method, c.path, nil)
			ctx := request.WithUser(r.Context(), &user.DefaultInfo{Name: "eve"})
			info, _ := requestInfoResolver.NewRequestInfo(r)
			r = r.WithContext(request.WithRequestInfo(ctx, info))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != c.code || served != (c.code == http.StatusTeapot) {
				t.Fatalf("code %d, served %v; want %d (%s)", rec.Code, served, c.code, rec.Body)
			}
			if fmt.Sprint(asked) != fmt.Sprint(c.asked) {
				t.Errorf("asked %v, want %v", asked, c.asked)
			}
			if c.code == http.StatusForbidden {
				last := c.asked[len(c.asked)-1]
				var st metav1.Status
				_ = json.Unmarshal(rec.Body.Bytes(), &st)
				if want := `cannot ` + last.verb + ` resource "myresources`; !strings.Contains(st.Message, want) {
					t.Errorf("denial %q does not name the request's own verb (%q)", st.Message, want)
				}
			}
		})
	}
}
