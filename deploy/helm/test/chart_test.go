// Package chart tests the Helm chart in deploy/helm/crproxy: it renders the
// chart with Helm's Go SDK, checks what crproxy will make of the result (its
// own flag parser and configuration loader read the rendered arguments and
// files), and applies the objects to a real kube-apiserver from
// internal/localcluster.
//
// It is a module of its own so that Helm's dependencies never enter
// crproxy's go.mod; docs/design/deployment.md says more.
package chart

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"maps"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/internal/cli"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// chartDir is the chart under test, from this package's folder.
const chartDir = "../crproxy"

// chartCase is one set of values and what the chart must make of it.
type chartCase struct {
	name, release, namespace string
	values                   string
	fullname                 string
	replicas                 int32
	persistent               bool
	// kubeconfigs are the targets' kubeconfigs by "<project>/<name>".
	kubeconfigs map[string]string
	// apiServices are the APIServices' names.
	apiServices []string
}

// The chart's defaults with the two values it cannot default: a target
// and a resource to proxy.
var defaults = chartCase{
	name: "defaults", release: "crproxy", namespace: "crproxy", fullname: "crproxy",
	values: `
targets:
  - name: target
    kubeconfig: |
      # target
      apiVersion: v1
      kind: Config
customResources:
  myresources.example.com/v1:
    enabled: true
    targetVirtualCluster: {name: target}
`,
	replicas:    2,
	kubeconfigs: map[string]string{"default/target": "# target\napiVersion: v1\nkind: Config\n"},
	apiServices: []string{"v1.example.com"},
}

// Persistence, three replicas, two targets in two projects, two
// group/versions (one by wildcard) and a disabled key that gets nothing.
var persistent = chartCase{
	name: "persistent", release: "proxy", namespace: "team-a", fullname: "proxy-crproxy",
	values: `
replicaCount: 3
client: {name: team-a, project: default}
persistence: {enabled: true, storageClassName: fast, size: 5Gi}
targets:
  - name: orchestrator
    kubeconfig: "# orchestrator\n"
  - name: shared
    project: platform
    kubeconfig: "# shared\n"
customResources:
  myresources.example.com/v1:
    enabled: true
    targetVirtualCluster: {name: orchestrator}
  "*.test.io/v2":
    enabled: true
    targetVirtualCluster: {name: shared, project: platform}
    accessResources: all
  otherthings.other.io/v1:
    enabled: false
    targetVirtualCluster: {name: orchestrator}
`,
	replicas:    3,
	persistent:  true,
	kubeconfigs: map[string]string{"default/orchestrator": "# orchestrator\n", "platform/shared": "# shared\n"},
	apiServices: []string{"v1.example.com", "v2.test.io"},
}

// rendered is the chart rendered for one release, as `helm install` would
// send it.
type rendered struct {
	manifest string
	objects  []*unstructured.Unstructured
}

// render renders the chart as an install of release into namespace. With a
// client configuration, Helm's lookup reads that cluster (as on an
// upgrade); without, lookup finds nothing (as under `helm template`).
func render(release, namespace, values string, restConfig *rest.Config) (*rendered, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	vals, err := common.ReadValues([]byte(values))
	if err != nil {
		return nil, err
	}
	top, err := chartutil.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	var files map[string]string
	if restConfig != nil {
		files, err = engine.RenderWithClient(chrt, top, restConfig)
	} else {
		files, err = engine.Render(chrt, top)
	}
	if err != nil {
		return nil, err
	}
	r := &rendered{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") || strings.TrimSpace(files[name]) == "" {
			continue
		}
		r.manifest += "---\n" + files[name] + "\n"
	}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(r.manifest)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(string(data)) == "null" {
			continue // an empty document
		}
		// Unstructured's JSON decoding keeps integers int64, as a client's
		// Get does, so rendered and live objects compare.
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		r.objects = append(r.objects, obj)
	}
	return r, nil
}

func mustRender(t *testing.T, c chartCase, restConfig *rest.Config) *rendered {
	t.Helper()
	r, err := render(c.release, c.namespace, c.values, restConfig)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return r
}

// get returns the rendered object of kind and name, converted into out.
func (r *rendered) get(t *testing.T, kind, name string, out any) bool {
	t.Helper()
	for _, o := range r.objects {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("%s %s: %v", kind, name, err)
			}
			return true
		}
	}
	return false
}

func (r *rendered) names(kind string) []string {
	var names []string
	for _, o := range r.objects {
		if o.GetKind() == kind {
			names = append(names, o.GetName())
		}
	}
	sort.Strings(names)
	return names
}

// TestChartRendersWhatCrproxyRuns renders both value sets and checks the
// result with crproxy's own flag parser and configuration loader, then
// has a real apiserver accept every object (server-side dry run).
func TestChartRendersWhatCrproxyRuns(t *testing.T) {
	s := clustertest.NewAPIServer(t, "chart")
	for _, c := range []chartCase{defaults, persistent} {
		t.Run(c.name, func(t *testing.T) {
			r := mustRender(t, c, nil)
			checkRendered(t, c, r)

			ctx := context.Background()
			if _, err := s.Kubectl(ctx, "create", "namespace", c.namespace); err != nil {
				t.Fatal(err)
			}
			out := apply(t, s.KubectlCmd(ctx, "apply", "--server-side", "--field-manager=helm", "--dry-run=server", "-f", "-"), r.manifest)
			if n := strings.Count(out, "(server dry run)"); n != len(r.objects) {
				t.Fatalf("the apiserver accepted %d of %d objects:\n%s", n, len(r.objects), out)
			}
		})
	}
}

// checkRendered checks the facts of one rendering: the workload, its
// arguments as crproxy parses them, the files they name, the TLS material,
// the APIServices and the RBAC that goes with them.
func checkRendered(t *testing.T, c chartCase, r *rendered) {
	t.Helper()
	var pod corev1.PodSpec
	var deploy appsv1.Deployment
	var sts appsv1.StatefulSet
	switch {
	case !c.persistent && r.get(t, "Deployment", c.fullname, &deploy):
		if got := *deploy.Spec.Replicas; got != c.replicas {
			t.Errorf("Deployment replicas %d, want %d", got, c.replicas)
		}
		pod = deploy.Spec.Template.Spec
		if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "data" && v.EmptyDir != nil }) {
			t.Errorf("the data volume is not an emptyDir: %+v", pod.Volumes)
		}
	case c.persistent && r.get(t, "StatefulSet", c.fullname, &sts):
		if got := *sts.Spec.Replicas; got != c.replicas {
			t.Errorf("StatefulSet replicas %d, want %d", got, c.replicas)
		}
		pod = sts.Spec.Template.Spec
		if claims := sts.Spec.VolumeClaimTemplates; len(claims) != 1 || claims[0].Name != "data" || *claims[0].Spec.StorageClassName != "fast" {
			t.Errorf("volumeClaimTemplates: %+v", claims)
		}
	default:
		t.Fatalf("no workload %s (persistent %v) among %v %v", c.fullname, c.persistent, r.names("Deployment"), r.names("StatefulSet"))
	}
	if got := append(r.names("Deployment"), r.names("StatefulSet")...); len(got) != 1 {
		t.Errorf("workloads %v, want one", got)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	ctr := pod.Containers[0]

	// The arguments, parsed by crproxy's command line itself: a flag
	// the chart passes and serve lacks fails here.
	cmd, rest, err := cli.NewCommand().Find(ctr.Args)
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("args %q: not `crproxy serve`: %v", ctr.Args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("args %q: %v", ctr.Args, err)
	}
	flag := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	for name, want := range map[string]string{
		"leader-elect": "true", "external-name": "", "service-namespace": c.namespace,
		"service-name": c.fullname, "service-port": "443", "secure-port": "9443", "bind-address": "0.0.0.0",
	} {
		if got := flag(name); got != want {
			t.Errorf("--%s=%q, want %q", name, got, want)
		}
	}

	// Probes and ports.
	port := ctr.Ports[0]
	if port.Name != "https" || port.ContainerPort != 9443 {
		t.Errorf("container port %+v, want https 9443", port)
	}
	for what, p := range map[string]*corev1.Probe{"/livez": ctr.LivenessProbe, "/readyz": ctr.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != what || p.HTTPGet.Port.String() != "https" || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe %s: %+v", what, p)
		}
	}
	var svc corev1.Service
	if !r.get(t, "Service", c.fullname, &svc) || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "https" {
		t.Errorf("Service %s: %+v", c.fullname, svc.Spec.Ports)
	}
	if sc := ctr.SecurityContext; sc == nil || !*sc.ReadOnlyRootFilesystem || pod.SecurityContext == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("security context: container %+v, pod %+v", ctr.SecurityContext, pod.SecurityContext)
	}
	if ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", ctr.Resources)
	}

	// The files the flags name, through the mounts, from the rendered
	// ConfigMap and Secrets.
	file := mountedFiles(t, r, pod, ctr)
	cfg, err := config.Parse([]byte(file(flag("config"))))
	if err != nil {
		t.Fatalf("the rendered configuration: %v", err)
	}
	if cfg.Client.Kubeconfig != "" {
		t.Errorf("client kubeconfig %q, want the in-cluster configuration", cfg.Client.Kubeconfig)
	}
	got := map[string]string{}
	for _, target := range cfg.Targets {
		got[target.Project+"/"+target.Name] = file(target.Kubeconfig)
	}
	if !maps.Equal(got, c.kubeconfigs) {
		t.Errorf("the targets' kubeconfigs as crproxy reads them: %q, want %q", got, c.kubeconfigs)
	}
	if data := flag("data-dir"); !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "data" && m.MountPath == data && !m.ReadOnly }) {
		t.Errorf("--data-dir %s is not the data volume: %+v", data, ctr.VolumeMounts)
	}
	caPEM := checkTLS(t, c, file(flag("tls-cert-file")), file(flag("tls-private-key-file")), file(flag("ca-bundle-file")))

	// One APIService per group/version of the configuration, pointing at
	// the Service with the CA crproxy registers too.
	var gvs []string
	for _, gv := range cfg.GroupVersions() {
		gvs = append(gvs, gv.GroupVersion.Version+"."+gv.GroupVersion.Group)
	}
	sort.Strings(gvs)
	if got := r.names("APIService"); !slices.Equal(got, c.apiServices) || !slices.Equal(got, gvs) {
		t.Errorf("APIServices %v, want %v (configuration: %v)", got, c.apiServices, gvs)
	}
	for _, o := range r.objects {
		if o.GetKind() != "APIService" {
			continue
		}
		spec, _, _ := unstructured.NestedMap(o.Object, "spec")
		service, _, _ := unstructured.NestedMap(spec, "service")
		if service["name"] != c.fullname || service["namespace"] != c.namespace || service["port"] != int64(443) {
			t.Errorf("APIService %s: service %v", o.GetName(), service)
		}
		if spec["caBundle"] != base64.StdEncoding.EncodeToString([]byte(caPEM)) {
			t.Errorf("APIService %s: caBundle is not the mounted ca.crt", o.GetName())
		}
	}

	// RBAC: the APIServices by name, and the Lease serve --leader-elect
	// takes (<service-name>-registration, internal/cli/serve/leader.go).
	var cr rbacv1.ClusterRole
	if !r.get(t, "ClusterRole", c.namespace+"-"+c.fullname, &cr) || !slices.Equal(cr.Rules[0].ResourceNames, c.apiServices) {
		t.Errorf("ClusterRole's APIServices %v, want %v", cr.Rules, c.apiServices)
	}
	var role rbacv1.Role
	if !r.get(t, "Role", c.fullname, &role) || !slices.Equal(role.Rules[1].ResourceNames, []string{flag("service-name") + "-registration"}) {
		t.Errorf("Role's Lease %v, want %s-registration", role.Rules, flag("service-name"))
	}
	var pdb unstructured.Unstructured
	if !r.get(t, "PodDisruptionBudget", c.fullname, &pdb.Object) {
		t.Error("no PodDisruptionBudget")
	}
}

// mountedFiles returns a function that reads a file of the container as
// the pod would see it: through its projected volume, from the rendered
// ConfigMap or Secret.
func mountedFiles(t *testing.T, r *rendered, pod corev1.PodSpec, ctr corev1.Container) func(string) string {
	t.Helper()
	files := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				switch {
				case src.ConfigMap != nil:
					var cm corev1.ConfigMap
					if !r.get(t, "ConfigMap", src.ConfigMap.Name, &cm) {
						t.Fatalf("volume %s: no ConfigMap %s", v.Name, src.ConfigMap.Name)
					}
					for _, item := range src.ConfigMap.Items {
						files[m.MountPath+"/"+item.Path] = cm.Data[item.Key]
					}
				case src.Secret != nil:
					var secret corev1.Secret
					if !r.get(t, "Secret", src.Secret.Name, &secret) {
						t.Fatalf("volume %s: no Secret %s", v.Name, src.Secret.Name)
					}
					for _, item := range src.Secret.Items {
						files[m.MountPath+"/"+item.Path] = string(secret.Data[item.Key])
					}
				}
			}
		}
	}
	return func(path string) string {
		t.Helper()
		content, ok := files[path]
		if !ok {
			t.Fatalf("%s is not a mounted file (mounted: %v)", path, slices.Sorted(maps.Keys(files)))
		}
		return content
	}
}

// checkTLS checks that the serving certificate and key belong together and
// that the CA verifies the certificate for the name the aggregator checks,
// <service>.<namespace>.svc. It returns the CA.
func checkTLS(t *testing.T, c chartCase, certPEM, keyPEM, caPEM string) string {
	t.Helper()
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		t.Fatalf("serving certificate and key: %v", err)
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatal("the serving certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatal("ca.crt holds no certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: c.fullname + "." + c.namespace + ".svc"}); err != nil {
		t.Errorf("the CA does not verify the serving certificate for the Service: %v", err)
	}
	return caPEM
}

// apply runs a kubectl apply with manifest on stdin and returns its output.
func apply(t *testing.T, cmd *exec.Cmd, manifest string) string {
	t.Helper()
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args[2:], " "), err, out)
	}
	return string(out)
}

// The group/version of an APIService name such as v1.example.com.
func groupVersion(name string) schema.GroupVersion {
	version, group, _ := strings.Cut(name, ".")
	return schema.GroupVersion{Group: group, Version: version}
}

// The least values that render, for the checks below to vary.
const (
	oneTarget   = "targets: [{name: target, kubeconfig: x}]\n"
	oneResource = "customResources: {myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}}}\n"
)

// TestChartRefusesIncompleteValues: what the chart cannot default fails the
// render with a message that says how to fix it.
func TestChartRefusesIncompleteValues(t *testing.T) {
	for _, c := range []struct{ name, values, want string }{
		{"no target", oneResource, "targets: at least one target is required"},
		{"empty kubeconfig", "targets: [{name: target}]\n" + oneResource, "--set-file 'targets[0].kubeconfig="},
		{"no resource", oneTarget, "customResources: no enabled key"},
		{"bad key", oneTarget + "customResources: {myresources/v1: {enabled: true}}", `key "myresources/v1" is not resource.group/version`},
		{"no TLS secret", oneTarget + oneResource + "tls: {generate: false}", "tls.existingSecret is required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render("crproxy", "crproxy", c.values, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("render error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestChartExistingTLSSecret: with tls.existingSecret (cert-manager's, say)
// the chart makes no certificate, mounts that Secret, and puts tls.caBundle
// into the APIServices.
func TestChartExistingTLSSecret(t *testing.T) {
	const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	r, err := render("crproxy", "crproxy", oneTarget+oneResource+"tls: {generate: false, existingSecret: crproxy-cert, caBundle: "+strconv.Quote(ca)+"}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.names("Secret"); !slices.Equal(got, []string{"crproxy-targets"}) {
		t.Errorf("Secrets %v, want only the targets'", got)
	}
	if !strings.Contains(r.manifest, "name: crproxy-cert\n") {
		t.Error("the existing Secret is not mounted")
	}
	var apiService unstructured.Unstructured
	r.get(t, "APIService", "v1.example.com", &apiService.Object)
	if got, _, _ := unstructured.NestedString(apiService.Object, "spec", "caBundle"); got != base64.StdEncoding.EncodeToString([]byte(ca)) {
		t.Errorf("caBundle %q, want tls.caBundle", got)
	}
}
