package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// lostNamespace keeps this test's objects apart on the shared target.
const lostNamespace = "lost-requests"

// A request to the target lost on the way, with a real kube-apiserver
// behind a proxy that resets chosen HTTP/2 streams: a write whose answer
// is lost, or that is lost itself once sent, is 504 "the outcome of this
// write is unknown" (crproxy cannot tell which happened, and does not
// retry), and the caller learns the outcome by reading; a lookup lost
// before the write was sent is 503 with Retry-After, nothing was written.
// After each, the next write works at once.
func TestLostTargetRequests(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	faults, err := localcluster.NewRequestProxy(target.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(faults.Close)
	kubeconfig := filepath.Join(t.TempDir(), "target-via-faults.kubeconfig")
	if err := localcluster.WriteKubeconfig(kubeconfig, "target", faults.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := crproxytest.Config("client", client, target)
	cfg.Targets[0].Kubeconfig = kubeconfig
	startProxy(t, client, cfg)
	kubectl(t, ctx, client, "create", "namespace", lostNamespace)
	// Each subtest may run alone: the namespace exists at the target
	// before crproxy's first create there would make it.
	if out, err := target.Kubectl(ctx, "create", "namespace", lostNamespace); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("%v\n%s", err, out)
	}

	viaClient := dynamicClient(t, client).Resource(crproxytest.MyResources).Namespace(lostNamespace)
	atTarget := dynamicClient(t, target).Resource(crproxytest.MyResources).Namespace(lostNamespace)
	collection := "/apis/example.com/v1/namespaces/" + lostNamespace + "/myresources"
	request := func(method, path string) func(*http.Request) bool {
		return func(r *http.Request) bool { return r.Method == method && r.URL.Path == path && r.URL.RawQuery == "" }
	}
	// fail arms fault for the request method path and runs write, which
	// must have met it.
	fail := func(t *testing.T, method, path string, fault localcluster.RequestFault, write func() error) error {
		t.Helper()
		fired := faults.FailNext(request(method, path), fault)
		err := write()
		select {
		case <-fired:
		default:
			t.Fatalf("the write never sent %s %s to the target; it answered %v", method, path, err)
		}
		return err
	}
	wantUnknown := func(t *testing.T, err error) {
		t.Helper()
		var status apierrors.APIStatus
		if !errors.As(err, &status) || status.Status().Code != http.StatusGatewayTimeout || status.Status().Reason != metav1.StatusReasonTimeout ||
			!strings.Contains(status.Status().Message, "the outcome of this write at target default/target is unknown") {
			t.Fatalf("want 504 Timeout, the outcome of this write is unknown; got %v", err)
		}
	}
	specAtTarget := func(t *testing.T, name string) string {
		t.Helper()
		o, err := atTarget.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s at the target: %v", name, err)
		}
		s, _, _ := unstructured.NestedString(o.Object, "spec", "name")
		return s
	}

	t.Run("a create whose answer is lost is 504, and was carried out", func(t *testing.T) {
		err := fail(t, http.MethodPost, collection, localcluster.LoseAnswer, func() error {
			_, err := viaClient.Create(ctx, myResource("lost-answer", "created"), metav1.CreateOptions{})
			return err
		})
		wantUnknown(t, err)
		if got := specAtTarget(t, "lost-answer"); got != "created" {
			t.Fatalf("spec.name at the target: %q", got)
		}
		// What the caller does next: read, and find the object. The lost
		// answer counted as a failure of the target, so reads come from
		// the mirror with a Warning until crproxy's probe, made at once,
		// hears from it: soon a consistent read, without Warning, has it.
		crproxytest.Eventually(t, ctx, 3*time.Second, func() string {
			a := clientRequest(t, ctx, client, http.MethodGet, collection+"/lost-answer", "", nil)
			if w := a.header.Get("Warning"); a.code != http.StatusOK || w != "" {
				return fmt.Sprintf("%d, Warning %q: %s", a.code, w, a.body)
			}
			return ""
		})
		if _, err := viaClient.Create(ctx, myResource("lost-answer", "again"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating it again: want AlreadyExists, got %v", err)
		}
	})

	t.Run("an update lost once sent is 504 too, and was not carried out", func(t *testing.T) {
		o := createThrough(t, ctx, viaClient, "lost-update")
		_ = unstructured.SetNestedField(o.Object, "updated", "spec", "name")
		err := fail(t, http.MethodPut, collection+"/lost-update", localcluster.LoseRequest, func() error {
			_, err := viaClient.Update(ctx, o, metav1.UpdateOptions{})
			return err
		})
		wantUnknown(t, err)
		if got := specAtTarget(t, "lost-update"); got != "lost-update" {
			t.Fatalf("spec.name at the target after a lost update: %q", got)
		}
		// Sent again, it goes through: crproxy probes the target before
		// a write instead of failing it until its backoff ends.
		if _, err := viaClient.Update(ctx, o, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("the update again: %v", err)
		}
		if got := specAtTarget(t, "lost-update"); got != "updated" {
			t.Fatalf("spec.name at the target: %q", got)
		}
	})

	t.Run("an update whose answer is lost is 504, and was carried out", func(t *testing.T) {
		o := createThrough(t, ctx, viaClient, "lost-update-answer")
		_ = unstructured.SetNestedField(o.Object, "updated", "spec", "name")
		err := fail(t, http.MethodPut, collection+"/lost-update-answer", localcluster.LoseAnswer, func() error {
			_, err := viaClient.Update(ctx, o, metav1.UpdateOptions{})
			return err
		})
		wantUnknown(t, err)
		if got := specAtTarget(t, "lost-update-answer"); got != "updated" {
			t.Fatalf("spec.name at the target: %q", got)
		}
	})

	t.Run("a lookup lost before the write is 503, nothing was written", func(t *testing.T) {
		// Another client's object: the mirror does not hold it, so the
		// ownership check asks the target.
		createAtTarget(t, ctx, target, lostNamespace, "other-client", []string{"not-mine"}, "")
		path := collection + "/not-mine"
		body := []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"not-mine","namespace":"` + lostNamespace + `"},"spec":{"name":"taken"}}`)
		var a answer
		fail(t, http.MethodGet, path, localcluster.LoseRequest, func() error {
			a = clientRequest(t, ctx, client, http.MethodPut, path, "application/json", body)
			return nil
		})
		s := a.status(t)
		if a.code != http.StatusServiceUnavailable || !strings.Contains(s.Message, "nothing was written") || a.header.Get("Retry-After") == "" {
			t.Fatalf("a write whose lookup was lost: %d %q Retry-After=%q", a.code, s.Message, a.header.Get("Retry-After"))
		}
		if got := specAtTarget(t, "not-mine"); got != "not-mine" {
			t.Fatalf("spec.name at the target: %q", got)
		}
		// Retried, as the Retry-After invites: the ownership check
		// answers, as for any object this client does not own.
		if a := clientRequest(t, ctx, client, http.MethodPut, path, "application/json", body); a.code != http.StatusNotFound {
			t.Fatalf("the write again: %d %s", a.code, a.body)
		}
	})
}

// myResource is a MyResource named name in lostNamespace with spec.name.
func myResource(name, specName string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1",
		"kind":       "MyResource",
		"metadata":   map[string]any{"name": name, "namespace": lostNamespace},
		"spec":       map[string]any{"name": specName},
	}}
}

// createThrough creates name (spec.name = name) through rc.
func createThrough(t *testing.T, ctx context.Context, rc dynamic.ResourceInterface, name string) *unstructured.Unstructured {
	t.Helper()
	o, err := rc.Create(ctx, myResource(name, name), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return o
}
