package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// newManagementCluster is a platform's management cluster: a kube-apiserver
// serving virtualclusterinstances.management.loft.sh, with the project
// namespaces the documentation's platform RBAC goes into.
func newManagementCluster(t *testing.T, ctx context.Context, projects ...string) *localcluster.APIServer {
	t.Helper()
	mgmt := clustertest.NewAPIServer(t, "platform")
	installCRD(t, ctx, mgmt, "virtualclusterinstance-crd.yaml")
	for _, p := range projects {
		kubectl(t, ctx, mgmt, "create", "namespace", "p-"+p)
	}
	return mgmt
}

// withPlatform is cfg checked against the management cluster mgmt, as its
// admin.
func withPlatform(cfg config.Config, mgmt *localcluster.APIServer) config.Config {
	cfg.Platform = &config.Platform{Kubeconfig: mgmt.KubeconfigPath}
	return cfg
}

// The documentation's platform permission, end to end: with its
// platform-rbac.yaml applied unchanged the client works; revoked, the
// target's resources answer 403 naming the permission and the check, and
// the mirrored objects are forgotten; granted again, they work within
// seconds without a restart; with the management cluster down, reads are
// served from the mirror with a Warning and writes answer 503.
func TestPlatformUsePermission(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	mgmt := newManagementCluster(t, ctx, "default")
	apply(t, ctx, mgmt, "platform-rbac.yaml")
	if out := kubectl(t, ctx, mgmt, "auth", "can-i", "use", "virtualclusterinstances/target", "--as=loft:vcluster:p-default:client", "-n", "p-default"); out != "yes" {
		t.Fatalf("the documentation's check after its platform RBAC: %q", out)
	}
	p := startProxy(t, client, withPlatform(crproxytest.Config("client", client, target), mgmt))
	kubectl(t, ctx, client, "create", "namespace", "plat")
	kubectlApply(t, ctx, client, "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: granted\n  namespace: plat\nspec:\n  name: granted\n")
	wantNames(t, names(t, ctx, client, "-n", "plat"), "granted")

	const message = `crproxy's client "loft:vcluster:p-default:client" may not use target "default/target"`
	const check = "kubectl auth can-i use virtualclusterinstances/target --as=loft:vcluster:p-default:client -n p-default"
	t.Run("revoked: 403 naming the permission, and the mirror forgets", func(t *testing.T) {
		kubectl(t, ctx, mgmt, "delete", "rolebinding", "client-vcluster-proxy-access", "-n", "p-default")
		crproxytest.Eventually(t, ctx, 20*time.Second, func() string {
			out, err := client.Kubectl(ctx, "get", "myresources", "-n", "plat")
			if err == nil || !strings.Contains(out, message) || !strings.Contains(out, check) {
				return fmt.Sprintf("get after the revocation: %v %s", err, out)
			}
			return ""
		})
		got := clientRequest(t, ctx, client, "POST", "/apis/example.com/v1/namespaces/plat/myresources", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"refused"},"spec":{"name":"x"}}`))
		if got.code != 403 || !strings.Contains(got.status(t).Message, message) {
			t.Errorf("a create without the permission: %d %s", got.code, got.body)
		}
		wantNames(t, names(t, ctx, target, "-n", "plat"), "granted")
		crproxytest.Eventually(t, ctx, 10*time.Second, func() string {
			st, err := crproxyStatus(t, ctx, p)
			if err != nil {
				return err.Error()
			}
			if !strings.Contains(st, "Denied") || !strings.Contains(st, check) {
				return "crproxy status does not show the refusal:\n" + st
			}
			if line := grepLines(st, "myresources.v1.example.com"); !strings.Contains(line, " 0 ") {
				return "the mirror still holds objects: " + line
			}
			return ""
		})
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		code, body := httpGet(t, ctx, insecure, p.URL()+"/readyz?verbose")
		if code != 200 || !strings.Contains(body, "[-]platform use of target default/target: Denied since") || !strings.Contains(body, check) {
			t.Errorf("/readyz?verbose: %d %s", code, body)
		}
	})

	t.Run("granted again: works within seconds, without a restart", func(t *testing.T) {
		apply(t, ctx, mgmt, "platform-rbac.yaml")
		crproxytest.Eventually(t, ctx, 20*time.Second, func() string {
			out, err := client.Kubectl(ctx, "get", "myresources", "-n", "plat", "-o", "name")
			if err != nil || strings.TrimSpace(out) != "myresource.example.com/granted" {
				return fmt.Sprintf("get after the grant: %v %s", err, out)
			}
			return ""
		})
	})

	t.Run("management cluster down: reads warned, writes 503", func(t *testing.T) {
		mgmt.Stop()
		t.Cleanup(func() { _ = mgmt.Start(context.Background()) })
		crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
			out, err := client.Kubectl(ctx, "get", "myresources", "-n", "plat", "-o", "name")
			if err != nil || !strings.Contains(out, "myresource.example.com/granted") || !strings.Contains(out, "Warning:") || !strings.Contains(out, "management cluster") {
				return fmt.Sprintf("get with the management cluster down: %v %s", err, out)
			}
			return ""
		})
		got := clientRequest(t, ctx, client, "POST", "/apis/example.com/v1/namespaces/plat/myresources", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"unasked"},"spec":{"name":"x"}}`))
		if got.code != 503 || strings.Contains(string(got.body), strings.TrimPrefix(mgmt.URL, "https://")) {
			t.Errorf("a create with the management cluster down: %d %s; want 503 naming no address", got.code, got.body)
		}
		wantNames(t, names(t, ctx, target, "-n", "plat"), "granted")
	})
}

// The documentation's multi-client platform RBAC, applied unchanged, lets
// team-a and team-b use the orchestrator, and not the basic setup's client.
func TestPlatformMultiClientRBAC(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "orchestrator")
	prepareWriteTarget(t, ctx, target)
	mgmt := newManagementCluster(t, ctx, "default")
	apply(t, ctx, mgmt, "multi-client-platform-rbac.yaml")
	for _, team := range []string{"team-a", "team-b"} {
		client := clustertest.NewAPIServer(t, team)
		cfg := crproxytest.Config(team, client, target)
		cfg.Targets[0].Name = "orchestrator"
		cfg.Experimental.Proxy.CustomResources[crproxytest.MyResourcesKey] = config.CustomResourceProxy{Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "orchestrator"}}
		startProxy(t, client, withPlatform(cfg, mgmt))
		kubectlApplyOut(t, ctx, client, teamResource(team, team))
		wantNames(t, names(t, ctx, client), team+"-resource")
	}
	for who, want := range map[string]string{"team-a": "yes", "team-b": "yes", "client": "no"} {
		out, _ := mgmt.Kubectl(ctx, "auth", "can-i", "use", "virtualclusterinstances/orchestrator", "--as=loft:vcluster:p-default:"+who, "-n", "p-default")
		if strings.TrimSpace(out) != want {
			t.Errorf("can %s use the orchestrator? %q, want %s", who, out, want)
		}
	}
}

// A target of another project is checked in that project's namespace:
// the documentation's platform RBAC moved to p-other-project lets the
// client use it, and taking it away there refuses it.
func TestPlatformCrossProjectTarget(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	mgmt := newManagementCluster(t, ctx, "default", "other-project")
	// The documentation's manifest in the namespace of the target's project.
	kubectlApply(t, ctx, mgmt, strings.ReplaceAll(crproxytest.Manifest("platform-rbac.yaml"), "namespace: p-default", "namespace: p-other-project"))
	cfg := crproxytest.Config("client", client, target)
	cfg.Targets[0].Project = "other-project"
	cfg.Experimental.Proxy.CustomResources[crproxytest.MyResourcesKey] = config.CustomResourceProxy{
		Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target", Project: "other-project"},
	}
	startProxy(t, client, withPlatform(cfg, mgmt))
	kubectlApplyOut(t, ctx, client, teamResource("cross", "across projects"))
	wantNames(t, names(t, ctx, target), "cross-resource")

	kubectl(t, ctx, mgmt, "delete", "rolebinding", "client-vcluster-proxy-access", "-n", "p-other-project")
	want := `crproxy's client "loft:vcluster:p-default:client" may not use target "other-project/target"`
	crproxytest.Eventually(t, ctx, 20*time.Second, func() string {
		out, err := client.Kubectl(ctx, "get", "myresources")
		if err == nil || !strings.Contains(out, want) || !strings.Contains(out, "-n p-other-project") {
			return fmt.Sprintf("get after the revocation in p-other-project: %v %s", err, out)
		}
		return ""
	})
}
