package chart

import (
	"context"
	"maps"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/server"
)

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// TestChartInstalledRightsAndRegistration installs a rendering for real (no
// pod runs: the test cluster has no kubelet) and checks what only a live
// cluster shows: the chart's RBAC lets crproxy's leader register, and
// nothing more than crproxy needs; what the leader registers equals what
// Helm applied, so neither undoes the other and Helm's next server-side
// apply meets no conflict; and an upgrade keeps the certificate.
func TestChartInstalledRightsAndRegistration(t *testing.T) {
	s := clustertest.NewAPIServer(t, "install")
	ctx := context.Background()
	c := persistent
	r := mustRender(t, c, nil)
	if _, err := s.Kubectl(ctx, "create", "namespace", c.namespace); err != nil {
		t.Fatal(err)
	}
	// As Helm 4 installs and upgrades: server-side apply as "helm",
	// without --force-conflicts.
	helmApply := func() {
		t.Helper()
		apply(t, s.KubectlCmd(ctx, "apply", "--server-side", "--field-manager=helm", "-f", "-"), r.manifest)
	}
	helmApply()

	// crproxy's leader, as the chart's ServiceAccount, registering with
	// what the chart passes: --service-port 443, --ca-bundle-file ca.crt.
	sa := "system:serviceaccount:" + c.namespace + ":" + c.fullname
	saConfig, err := s.ConfigFor(sa, "system:serviceaccounts", "system:serviceaccounts:"+c.namespace, "system:authenticated")
	if err != nil {
		t.Fatal(err)
	}
	saClient, err := dynamic.NewForConfig(saConfig)
	if err != nil {
		t.Fatal(err)
	}
	var tlsSecret corev1.Secret
	if !r.get(t, "Secret", c.fullname+"-tls", &tlsSecret) {
		t.Fatal("no TLS Secret")
	}
	reg := &server.Registration{Client: saClient, ServiceNamespace: c.namespace, ServiceName: c.fullname, Port: 443, CABundle: tlsSecret.Data["ca.crt"]}
	for _, name := range c.apiServices {
		reg.GroupVersions = append(reg.GroupVersions, groupVersion(name))
	}
	if err := reg.Apply(ctx); err != nil {
		t.Fatalf("registering as %s: %v", sa, err)
	}
	// A deleted APIService comes back: server-side apply creates it with
	// the patch right alone.
	if _, err := s.Kubectl(ctx, "delete", "apiservice", c.apiServices[1]); err != nil {
		t.Fatal(err)
	}
	if err := reg.Apply(ctx); err != nil {
		t.Fatalf("registering a deleted APIService again as %s: %v", sa, err)
	}

	helmApply() // a helm upgrade after crproxy registered
	admin, err := dynamic.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.objects {
		if o.GetKind() != "APIService" {
			continue
		}
		live, err := admin.Resource(apiServices).Get(ctx, o.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := unstructured.NestedMap(o.Object, "spec")
		got, _, _ := unstructured.NestedMap(live.Object, "spec")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("APIService %s: live spec %v, chart %v", o.GetName(), got, want)
		}
		if l := live.GetLabels()["app.kubernetes.io/managed-by"]; l != "Helm" {
			t.Errorf("APIService %s: managed-by %q, want Helm's", o.GetName(), l)
		}
	}

	lease := c.fullname + "-registration"
	for _, check := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "leases", "-n", c.namespace}, "yes"},
		{[]string{"get", "leases/" + lease, "-n", c.namespace}, "yes"},
		{[]string{"update", "leases/" + lease, "-n", c.namespace}, "yes"},
		{[]string{"update", "leases/another", "-n", c.namespace}, "no"},
		{[]string{"create", "tokenreviews.authentication.k8s.io"}, "yes"},
		{[]string{"create", "subjectaccessreviews.authorization.k8s.io"}, "yes"},
		{[]string{"get", "configmaps/extension-apiserver-authentication", "-n", "kube-system"}, "yes"},
		{[]string{"watch", "configmaps/extension-apiserver-authentication", "-n", "kube-system"}, "yes"},
		{[]string{"list", "namespaces"}, "yes"},
		{[]string{"watch", "namespaces"}, "yes"},
		{[]string{"delete", "apiservices/" + c.apiServices[0]}, "yes"},
		{[]string{"patch", "apiservices/v1.other.io"}, "no"},
		{[]string{"delete", "apiservices/v1.other.io"}, "no"},
		{[]string{"create", "apiservices/v1.other.io"}, "no"},
		{[]string{"patch", "services/" + c.fullname, "-n", c.namespace}, "no"},
		{[]string{"get", "secrets", "-n", c.namespace}, "no"},
	} {
		out, _ := s.KubectlCmd(ctx, append([]string{"auth", "can-i", "--as=" + sa}, check.args...)...).Output()
		if got := strings.TrimSpace(string(out)); got != check.want {
			t.Errorf("can %s %s? %q, want %q", sa, strings.Join(check.args, " "), got, check.want)
		}
	}

	// An upgrade renders with Helm's lookup against the cluster and keeps
	// the CA and certificate the APIServices trust.
	again := mustRender(t, c, s.RESTConfig())
	var kept corev1.Secret
	if !again.get(t, "Secret", c.fullname+"-tls", &kept) || !maps.EqualFunc(kept.Data, tlsSecret.Data, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Error("rendering against the installed release made a new certificate")
	}
}
