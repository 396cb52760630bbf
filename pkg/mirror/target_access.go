package mirror

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// What callers outside the mirror ask of a target. Every request goes as
// the client identity, through the target's one connection pool; the
// transport marks the target unreachable when a request cannot reach it
// (transport.go).

// NewRequest is a raw request to the API path at the target, with query
// and body, asking for JSON: the target's URL may carry a path (a
// platform's /kubernetes/project/p/virtualcluster/x), which requests go
// below, as client-go's do. Send it with Do.
func (t *Target) NewRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	u := *t.Host
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// Do sends a request made by NewRequest and returns the target's answer,
// whatever its status: the write path passes bodies and answers through
// unchanged. Nothing is retried: a create sent twice could be created
// twice.
func (t *Target) Do(req *http.Request) (*http.Response, error) { return t.httpClient.Do(req) }

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
