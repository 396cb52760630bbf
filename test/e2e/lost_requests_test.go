package e2e

import (
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

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// A request to the target lost on the way, with a real kube-apiserver
// behind a proxy that resets chosen HTTP/2 streams: a write whose answer
// is lost, or that is lost itself once sent, is 504 "the outcome of this
// write is unknown" (crproxy cannot tell which happened, and does not
// retry), and the caller learns the outcome by reading; a lookup lost
// before the write was sent is 503 with Retry-After, nothing was written.
// After each, the write works again.
func TestLostTargetRequests(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	hop, err := localcluster.NewRequestProxy(target.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hop.Close)
	kubeconfig := filepath.Join(t.TempDir(), "target-via-hop.kubeconfig")
	if err := localcluster.WriteKubeconfig(kubeconfig, "target", hop.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := crproxytest.Config("client", client, target)
	cfg.Targets[0].Kubeconfig = kubeconfig
	startProxy(t, client, cfg)
	// Its own namespace on the shared target, new in every run.
	namespace := fmt.Sprintf("lost-requests-%d", time.Now().UnixNano()%1_000_000)
	kubectl(t, ctx, client, "create", "namespace", namespace)
	// Each subtest may run alone: the namespace exists at the target
	// before crproxy's first create there would make it.
	kubectl(t, ctx, target, "create", "namespace", namespace)

	viaClient := dynamicClient(t, client).Resource(crproxytest.MyResources).Namespace(namespace)
	atTarget := dynamicClient(t, target).Resource(crproxytest.MyResources).Namespace(namespace)
	collection := "/apis/example.com/v1/namespaces/" + namespace + "/myresources"
	// fail arms fault for crproxy's request method path (no query) and
	// runs write, which must meet it.
	fail := func(t *testing.T, method, path string, fault localcluster.RequestFault, write func() error) error {
		t.Helper()
		fired, disarm := hop.FailNext(func(r *http.Request) bool {
			return r.Method == method && r.URL.Path == path && r.URL.RawQuery == ""
		}, fault)
		t.Cleanup(disarm)
		err := write()
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
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
	create := func(t *testing.T, name string) *unstructured.Unstructured {
		t.Helper()
		o, err := viaClient.Create(ctx, crproxytest.MyResource(namespace, name, name), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	t.Run("a create whose answer is lost is 504, and was carried out", func(t *testing.T) {
		err := fail(t, http.MethodPost, collection, localcluster.LoseAnswer, func() error {
			_, err := viaClient.Create(ctx, crproxytest.MyResource(namespace, "lost-answer", "created"), metav1.CreateOptions{})
			return err
		})
		wantUnknown(t, err)
		if got := specAtTarget(t, "lost-answer"); got != "created" {
			t.Fatalf("spec.name at the target: %q", got)
		}
		// What the caller does next: read, and find the object, soon in a
		// consistent read (the lost answer counted as a failure of the
		// target: until crproxy hears from it again, reads come from the
		// mirror with a Warning). A blind retry is told it exists.
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			a := clientRequest(t, ctx, client, http.MethodGet, collection+"/lost-answer", "", nil)
			if w := a.header.Get("Warning"); a.code != http.StatusOK || w != "" {
				return fmt.Sprintf("%d, Warning %q: %s", a.code, w, a.body)
			}
			return ""
		})
		if _, err := viaClient.Create(ctx, crproxytest.MyResource(namespace, "lost-answer", "again"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating it again: want AlreadyExists, got %v", err)
		}
	})

	// An update's fate at the target after each fault, as spec.name says.
	for _, tc := range []struct {
		name  string
		fault localcluster.RequestFault
		want  string
	}{
		{"an update lost once sent is 504, and was not carried out", localcluster.LoseRequest, "unchanged"},
		{"an update whose answer is lost is 504, and was carried out", localcluster.LoseAnswer, "updated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("update-%d", tc.fault)
			o := create(t, name)
			_ = unstructured.SetNestedField(o.Object, "updated", "spec", "name")
			wantUnknown(t, fail(t, http.MethodPut, collection+"/"+name, tc.fault, func() error {
				_, err := viaClient.Update(ctx, o, metav1.UpdateOptions{})
				return err
			}))
			want := map[string]string{"unchanged": name, "updated": "updated"}[tc.want]
			if got := specAtTarget(t, name); got != want {
				t.Fatalf("spec.name at the target: %q, want %q", got, want)
			}
			if tc.fault == localcluster.LoseRequest {
				// Sent again, it goes through (client-go waits out a 503
				// with Retry-After, should crproxy still count the target
				// down).
				if _, err := viaClient.Update(ctx, o, metav1.UpdateOptions{}); err != nil {
					t.Fatalf("the update again: %v", err)
				}
				if got := specAtTarget(t, name); got != "updated" {
					t.Fatalf("spec.name at the target after the update again: %q", got)
				}
			}
		})
	}

	t.Run("a lookup lost before the write is 503, nothing was written", func(t *testing.T) {
		// Another client's object: the mirror does not hold it, so the
		// ownership check asks the target.
		createAtTarget(t, ctx, target, namespace, "other-client", []string{"not-mine"}, "")
		path := collection + "/not-mine"
		body := []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"not-mine","namespace":"` + namespace + `"},"spec":{"name":"taken"}}`)
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
		// Retried, as the Retry-After invites (while crproxy still counts
		// the target down it answers 503 again): the ownership check
		// answers, as for any object this client does not own.
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			a := clientRequest(t, ctx, client, http.MethodPut, path, "application/json", body)
			if a.code != http.StatusNotFound {
				return fmt.Sprintf("the write again: %d %s", a.code, a.body)
			}
			return ""
		})
		if got := specAtTarget(t, "not-mine"); got != "not-mine" {
			t.Fatalf("spec.name at the target after the retry: %q", got)
		}
	})
}
