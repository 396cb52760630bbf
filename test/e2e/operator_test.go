package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

var myResourceGVK = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "MyResource"}

const (
	operatorFinalizer = "operator.example.com/cleanup"
	operatorLabel     = "operator.example.com/managed"
	operatorManager   = "myresource-operator"
)

// myResourceOperator is the kind of operator users run against proxied
// resources: controller-runtime, informers on unstructured objects, a
// finalizer, owned client ConfigMaps, a server-side applied label and a
// status. It records every reconcile error.
type myResourceOperator struct {
	client client.Client
	scheme *runtime.Scheme
	// seen, when set, is told of every object a reconcile read.
	seen func(*unstructured.Unstructured)

	mu     sync.Mutex
	errors []string
}

func (o *myResourceOperator) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	err := o.reconcile(ctx, req)
	if err != nil {
		o.mu.Lock()
		o.errors = append(o.errors, fmt.Sprintf("%s: %v", req.NamespacedName, err))
		o.mu.Unlock()
	}
	return reconcile.Result{}, err
}

func (o *myResourceOperator) reconcileErrors() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.errors...)
}

// startOperator runs myResourceOperator with a controller-runtime manager
// on the cluster cfg reaches, logging into name.log, until the test ends
// (seen as its seen hook). Its reconcile errors, retried, are logged.
func startOperator(t *testing.T, ctx context.Context, cfg *rest.Config, name string, seen func(*unstructured.Unstructured)) (ctrl.Manager, *myResourceOperator) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 zapr.NewLogger(crproxytest.FileLogger(t, name, filepath.Join(t.TempDir(), name+".log"))),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	op := &myResourceOperator{client: mgr.GetClient(), scheme: scheme, seen: seen}
	// Named, and without the name check: the operator and the
	// orchestrator run in one test process, each with a manager of its own.
	skip := true
	if err := ctrl.NewControllerManagedBy(mgr).Named(name).WithOptions(controller.Options{SkipNameValidation: &skip}).
		For(newMyResource()).Owns(&corev1.ConfigMap{}).Complete(op); err != nil {
		t.Fatal(err)
	}
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	return mgr, op
}

func newMyResource() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(myResourceGVK)
	return u
}

func (o *myResourceOperator) reconcile(ctx context.Context, req reconcile.Request) error {
	obj := newMyResource()
	if err := o.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if o.seen != nil {
		o.seen(obj)
	}
	configMap := &corev1.ConfigMap{}
	configMap.Name, configMap.Namespace = obj.GetName()+"-config", obj.GetNamespace()

	if obj.GetDeletionTimestamp() != nil {
		if !controllerutil.ContainsFinalizer(obj, operatorFinalizer) {
			return nil
		}
		if err := o.client.Delete(ctx, configMap); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cleaning up: %w", err)
		}
		before := obj.DeepCopy()
		controllerutil.RemoveFinalizer(obj, operatorFinalizer)
		return client.IgnoreNotFound(o.client.Patch(ctx, obj, client.MergeFrom(before)))
	}

	if !controllerutil.ContainsFinalizer(obj, operatorFinalizer) {
		before := obj.DeepCopy()
		controllerutil.AddFinalizer(obj, operatorFinalizer)
		if err := o.client.Patch(ctx, obj, client.MergeFrom(before)); err != nil {
			return fmt.Errorf("adding the finalizer: %w", err)
		}
	}

	priority, _, _ := unstructured.NestedString(obj.Object, "spec", "priority")
	if _, err := controllerutil.CreateOrUpdate(ctx, o.client, configMap, func() error {
		configMap.Data = map[string]string{"priority": priority}
		return controllerutil.SetControllerReference(obj, configMap, o.scheme)
	}); err != nil {
		return fmt.Errorf("owned configmap: %w", err)
	}

	if obj.GetLabels()[operatorLabel] != "true" {
		apply := newMyResource()
		apply.SetName(obj.GetName())
		apply.SetNamespace(obj.GetNamespace())
		apply.SetLabels(map[string]string{operatorLabel: "true"})
		if err := o.client.Patch(ctx, apply, client.Apply, client.FieldOwner(operatorManager), client.ForceOwnership); err != nil { //nolint:staticcheck // the unstructured apply path
			return fmt.Errorf("applying the label: %w", err)
		}
	}

	phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	observed, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if phase == "Ready" && observed == obj.GetGeneration() {
		return nil
	}
	before := obj.DeepCopy()
	if err := unstructured.SetNestedField(obj.Object, map[string]any{
		"phase":              "Ready",
		"observedGeneration": obj.GetGeneration(),
		"configMap":          configMap.Name,
	}, "status"); err != nil {
		return err
	}
	if err := o.client.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

// A controller-runtime operator in the client cluster works on proxied
// objects as on native ones: 50 objects reach Ready, spec changes are
// followed, deletes are cleaned up, and no reconcile fails. The client's
// controller manager logs no error about the proxied group meanwhile.
func TestOperatorThroughCrproxy(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client_ := clustertest.NewAPIServer(t, "client")
	installCRD(t, ctx, target, "myresource-crd-operator.yaml")
	// The documentation's RBAC, and CRD read access so that kubectl get
	// prints the operator CRD's columns (read-path.md).
	apply(t, ctx, target, "target-rbac.yaml", "target-rbac-crd-reader.yaml")
	startProxy(t, client_, crproxytest.Config("client", client_, target))
	kubectl(t, ctx, client_, "create", "namespace", "ops")

	mgr, op := startOperator(t, ctx, client_.RESTConfig(), "operator", nil)

	const n = 50
	var manifest strings.Builder
	for i := range n {
		fmt.Fprintf(&manifest, "---\napiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: obj-%02d\n  namespace: ops\nspec:\n  name: Object %d\n  priority: low\n", i, i)
	}
	start := time.Now()
	kubectlApply(t, ctx, client_, manifest.String())

	ready := func() int {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(myResourceGVK.GroupVersion().WithKind("MyResourceList"))
		if err := mgr.GetAPIReader().List(ctx, list, client.InNamespace("ops")); err != nil {
			return -1
		}
		count := 0
		for _, item := range list.Items {
			phase, _, _ := unstructured.NestedString(item.Object, "status", "phase")
			observed, _, _ := unstructured.NestedInt64(item.Object, "status", "observedGeneration")
			if phase == "Ready" && observed == item.GetGeneration() && item.GetLabels()[operatorLabel] == "true" &&
				controllerutil.ContainsFinalizer(&item, operatorFinalizer) {
				count++
			}
		}
		return count
	}
	crproxytest.Eventually(t, ctx, 60*time.Second, func() string {
		if got := ready(); got != n {
			return fmt.Sprintf("%d of %d objects Ready", got, n)
		}
		return ""
	})
	t.Logf("%d objects Ready %s after kubectl apply began", n, time.Since(start).Round(time.Millisecond))

	// Each has its owned ConfigMap in the client, and the target holds the
	// objects with the operator's finalizer, label and status.
	for i := range n {
		name := fmt.Sprintf("obj-%02d", i)
		cm := &corev1.ConfigMap{}
		if err := mgr.GetAPIReader().Get(ctx, client.ObjectKey{Namespace: "ops", Name: name + "-config"}, cm); err != nil {
			t.Fatalf("configmap of %s: %v", name, err)
		}
		if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].Kind != "MyResource" || cm.OwnerReferences[0].Name != name {
			t.Fatalf("configmap of %s: ownerReferences %v", name, cm.OwnerReferences)
		}
	}
	got := kubectl(t, ctx, target, "get", "myresource", "obj-07", "-n", "ops", "-o",
		`jsonpath={.metadata.finalizers[0]} {.metadata.labels.operator\.example\.com/managed} {.status.phase} {.metadata.labels.vcluster\.com/owner-vcluster}`)
	if got != operatorFinalizer+" true Ready client" {
		t.Fatalf("at the target: %q", got)
	}
	// kubectl get prints the CRD's columns through crproxy.
	table := kubectl(t, ctx, client_, "get", "myresources", "-n", "ops", "obj-07")
	if !strings.Contains(table, "PHASE") || !strings.Contains(table, "Ready") || !strings.Contains(table, "low") {
		t.Fatalf("kubectl get table:\n%s", table)
	}

	// A spec change is followed.
	kubectl(t, ctx, client_, "patch", "myresource", "obj-03", "-n", "ops", "--type=merge", "-p", `{"spec":{"priority":"high"}}`)
	crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
		if out, _ := client_.Kubectl(ctx, "get", "configmap", "obj-03-config", "-n", "ops", "-o", "jsonpath={.data.priority}"); out != "high" {
			return "configmap priority " + out
		}
		return ""
	})
	crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
		if got := ready(); got != n {
			return fmt.Sprintf("%d of %d objects Ready after the spec change", got, n)
		}
		return ""
	})

	// A client object that a user made a dependent of a proxied object: the
	// client's garbage collector checks its owner through crproxy (a
	// metadata GET) and deletes it once the owner is gone.
	uid := kubectl(t, ctx, client_, "get", "myresource", "obj-05", "-n", "ops", "-o", "jsonpath={.metadata.uid}")
	kubectlApply(t, ctx, client_, `apiVersion: v1
kind: ConfigMap
metadata:
  name: extra-05
  namespace: ops
  ownerReferences:
  - apiVersion: example.com/v1
    kind: MyResource
    name: obj-05
    uid: `+uid+"\n")

	// Deletes are cleaned up: finalizer removed, ConfigMap gone, object
	// gone in the client and at the target.
	for i := range 10 {
		kubectl(t, ctx, client_, "delete", "myresource", fmt.Sprintf("obj-%02d", i), "-n", "ops", "--wait=false")
	}
	crproxytest.Eventually(t, ctx, 60*time.Second, func() string {
		left := strings.Fields(kubectl(t, ctx, target, "get", "myresources", "-n", "ops", "-o", "name"))
		cms := kubectl(t, ctx, client_, "get", "configmaps", "-n", "ops", "-o", "name")
		for i := range 10 {
			name := fmt.Sprintf("obj-%02d", i)
			if slices.Contains(left, "myresource.example.com/"+name) || strings.Contains(cms, "/"+name+"-config") {
				return "still there: " + name
			}
		}
		if strings.Contains(cms, "/extra-05") {
			return "the garbage collector kept extra-05"
		}
		if len(left) != n-10 {
			return fmt.Sprintf("%d objects at the target, want %d", len(left), n-10)
		}
		return ""
	})

	if errs := op.reconcileErrors(); len(errs) > 0 {
		t.Fatalf("%d reconcile errors, first: %s", len(errs), errs[0])
	}
	if errs := controllerManagerErrors(t, client_, "example.com"); len(errs) > 0 {
		t.Fatalf("the client's kube-controller-manager logged %d errors about example.com, first:\n%s", len(errs), strings.Join(errs[:min(5, len(errs))], "\n"))
	}
}

// controllerManagerErrors returns the error lines (klog's E prefix) of s's
// kube-controller-manager log that mention what.
func controllerManagerErrors(t *testing.T, s *localcluster.APIServer, what string) []string {
	t.Helper()
	var out []string
	for _, line := range controllerManagerLog(t, s) {
		if strings.HasPrefix(line, "E") && strings.Contains(line, what) {
			out = append(out, line)
		}
	}
	return out
}

// controllerManagerLog returns the lines of s's kube-controller-manager log.
func controllerManagerLog(t *testing.T, s *localcluster.APIServer) []string {
	t.Helper()
	if s.ControllerManager == nil {
		t.Fatalf("%s runs no controller manager", s.Name)
	}
	data, err := os.ReadFile(s.ControllerManager.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")
}
