package mirror

import (
	"context"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// What callers outside the mirror ask of a target. Every request goes as
// the client identity, through the target's one connection pool; the
// transport marks the target unreachable when a request cannot reach it
// (transport.go).

// Do sends a raw request (its URL below Host) and returns the target's
// answer, whatever its status: the write path passes bodies and answers
// through unchanged. Nothing is retried: a create sent twice could be
// created twice.
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
// authenticates (no impersonation), with the ID id: for tests of callers
// that send raw requests (Do).
func NewTargetAt(id string, host *url.URL, hc *http.Client) *Target {
	return &Target{ID: id, Host: host, httpClient: hc, Connection: reconnect.NewTracker(id, reconnect.Options{})}
}
