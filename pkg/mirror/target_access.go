package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// What callers outside the mirror ask of a target. Every request goes as
// the client identity, through the target's one connection pool; the
// transport marks the target unreachable when a request cannot reach it
// (transport.go), and Send records what its own timeout ends.

// Call is one request to an API path at a target, as the write path and
// the consistent GET send it: the answer is passed on whatever its status.
type Call struct {
	// Method and Path are the request's; the target's URL may carry a
	// path (a platform's /kubernetes/project/p/virtualcluster/x), which
	// Path goes below, as client-go's requests do.
	Method, Path string
	// Query is the request's query (nil: none).
	Query url.Values
	// ContentType and Body are the request's body ("" and nil: none).
	ContentType string
	Body        []byte
	// Header is added to the request (the caller recorded as an
	// impersonation extra).
	Header http.Header
	// Timeout bounds the request, beyond the caller's context (0: only
	// the caller's).
	Timeout time.Duration
}

// Answer is a target's answer to a Call, whatever its status.
type Answer struct {
	// Code is the HTTP status code.
	Code int
	// ContentType and Body are the answer's, read whole.
	ContentType string
	Body        []byte
	// Warnings are the answer's Warning headers, parsed.
	Warnings []utilnet.WarningHeader
}

// CallError is a Call that got no answer from the target.
type CallError struct {
	// Err is the transport's error, or the timeout's.
	Err error
	// Sent says the target may have read the request: it was written to
	// a connection that did not fail to dial, or the answer had begun. A
	// request the transport retried on a new connection (an idle one the
	// target had closed) counts by its last attempt.
	Sent bool
	// CallerGone says the caller's context ended first: the failure says
	// nothing about the target, whose health was left as it is.
	CallerGone bool
}

func (e *CallError) Error() string { return e.Err.Error() }

func (e *CallError) Unwrap() error { return e.Err }

// Send sends c to the target as the client identity, asking for JSON, and
// returns the answer whatever its status, a *CallError when it got none,
// or the error of a malformed call (never sent). Nothing is
// retried: a create sent twice could be created twice. An answer, or a
// failure while the caller still waits, is recorded on the target's
// tracker.
func (t *Target) Send(ctx context.Context, c Call) (*Answer, error) {
	caller := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { written.Store(false) },
		WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) },
	})
	u := *t.Host
	u.Path = strings.TrimSuffix(u.Path, "/") + c.Path
	u.RawPath = ""
	u.RawQuery = c.Query.Encode()
	var body io.Reader
	if c.Body != nil {
		body = bytes.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, u.String(), body)
	if err != nil {
		return nil, err // not sent: the call is malformed
	}
	for k, v := range c.Header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	req.Header.Set("Accept", "application/json")
	if c.ContentType != "" {
		req.Header.Set("Content-Type", c.ContentType)
	}
	fail := func(err error, sent bool) (*Answer, error) {
		gone := caller.Err() != nil
		if !gone {
			t.Connection.Observe(err)
		}
		return nil, &CallError{Err: err, Sent: sent, CallerGone: gone}
	}
	resp, err := t.httpClient.Do(req)
	if err != nil {
		var opErr *net.OpError
		dialFailed := errors.As(err, &opErr) && opErr.Op == "dial"
		return fail(err, written.Load() && !dialFailed)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fail(err, true)
	}
	t.Connection.Observe(nil)
	warnings, _ := utilnet.ParseWarningHeaders(resp.Header.Values("Warning"))
	return &Answer{Code: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: data, Warnings: warnings}, nil
}

// GetJSON reads path at the target as JSON (an OpenAPI document).
func (t *Target) GetJSON(ctx context.Context, path string) ([]byte, error) {
	return t.discovery.RESTClient().Get().AbsPath(path).SetHeader("Accept", "application/json").DoRaw(ctx)
}

// Namespace reads a namespace at the target.
func (t *Target) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	return t.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
}

// CreateNamespace creates a namespace at the target.
func (t *Target) CreateNamespace(ctx context.Context, name string) error {
	_, err := t.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return err
}

// CRD reads the CustomResourceDefinition name (plural.group) at the
// target, as far as the identity may.
func (t *Target) CRD(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	return t.dynamic.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
}

// NewTargetAt returns a target reached with hc at host, as hc
// authenticates (no impersonation), with the ID id and every client of a
// target: for tests against a fake target.
func NewTargetAt(id string, host *url.URL, hc *http.Client) *Target {
	cfg := &rest.Config{Host: host.String()}
	t := &Target{ID: id, Host: host, httpClient: hc, Connection: reconnect.NewTracker(id, reconnect.Options{})}
	var err error
	if t.dynamic, err = dynamic.NewForConfigAndClient(cfg, hc); err != nil {
		panic(err) // only for an invalid host, which a test does not pass
	}
	if t.kube, err = kubernetes.NewForConfigAndClient(cfg, hc); err != nil {
		panic(err)
	}
	t.discovery = t.kube.Discovery()
	if t.metadata, err = metadata.NewForConfigAndClient(cfg, hc); err != nil {
		panic(err)
	}
	return t
}
