package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// gadgetCRD serves dep.example.com v1beta1 (deprecated, with warning when
// set; with a printer column and a described spec.size when sized) and v1,
// and lets the client identity use gadgets.
func gadgetCRD(deprecated bool, warning string, sized ...bool) string {
	w := ""
	if warning != "" {
		w = fmt.Sprintf("\n    deprecationWarning: %q", warning)
	}
	if len(sized) > 0 && sized[0] {
		w += `
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              size:
                type: integer
                description: How big the gadget is.`
	} else {
		w += `
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true`
	}
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.dep.example.com
spec:
  group: dep.example.com
  names:
    kind: Gadget
    listKind: GadgetList
    plural: gadgets
    singular: gadget
  scope: Namespaced
  versions:
  - name: v1beta1
    served: true
    storage: false
    deprecated: %t%s
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, deprecated, w) + "---\n" + crproxytest.ClientRBAC("gadgets-client",
		rbacv1.PolicyRule{APIGroups: []string{"dep.example.com"}, Resources: []string{"gadgets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		crproxytest.NamespacesRule)
}

// crdWatcherRBAC lets the client identity list and watch CRDs at the
// target.
var crdWatcherRBAC = crproxytest.ClientRBAC("crd-watcher",
	rbacv1.PolicyRule{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list", "watch"}})

// Reads of a deprecated version through crproxy carry the target's
// deprecation warning, as the target's own reads do: kubectl prints it
// and --warnings-as-errors fails the same way. Without permission to read
// CRDs at the target, crproxy learns it from its own reads of the
// resource; with it, from the CRD, so a change of deprecation shows at
// once.
func TestDeprecationWarnings(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	kubectlApply(t, ctx, target, gadgetCRD(true, ""))
	kubectl(t, ctx, target, "wait", "--for=condition=Established", "--timeout=60s", "crd/gadgets.dep.example.com")
	kubectl(t, ctx, target, "create", "namespace", "dep")
	cfg := crproxytest.Config("client", client, target)
	cfg.Experimental.Proxy.CustomResources = map[string]config.CustomResourceProxy{
		"gadgets.dep.example.com/v1beta1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName}, AccessResources: config.AccessOwned},
	}
	p := startProxy(t, client, cfg)
	kubectl(t, ctx, client, "create", "namespace", "dep")
	kubectlApply(t, ctx, client, `{"apiVersion":"dep.example.com/v1beta1","kind":"Gadget","metadata":{"name":"g1","namespace":"dep"}}`)

	// warnings runs a read of v1beta1 with kubectl against s and returns
	// its Warning lines.
	warnings := func(args ...string) (viaClient, native string) {
		read := func(s *localcluster.APIServer) string {
			out, _ := s.Kubectl(ctx, args...)
			var lines []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "Warning:") {
					lines = append(lines, l)
				}
			}
			return strings.Join(lines, "\n")
		}
		return read(client), read(target)
	}
	reads := [][]string{
		{"get", "gadgets.v1beta1.dep.example.com", "-n", "dep"},
		{"get", "gadgets.v1beta1.dep.example.com", "g1", "-n", "dep", "-o", "name"},
	}
	sameWarnings := func(t *testing.T, want string) {
		t.Helper()
		for _, args := range reads {
			got, native := warnings(args...)
			if native != want {
				t.Fatalf("the target warns %q on kubectl %s, want %q", native, strings.Join(args, " "), want)
			}
			if got != native {
				t.Fatalf("kubectl %s through the client warns %q; the target warns %q", strings.Join(args, " "), got, native)
			}
		}
	}

	followsCRDs := func() bool {
		log, err := os.ReadFile(p.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(log), "watching the target's CRDs for version warnings and generations")
	}

	t.Run("without CRD access, from crproxy's own reads", func(t *testing.T) {
		if followsCRDs() {
			t.Fatal("crproxy follows the target's CRDs without access to them")
		}
		sameWarnings(t, "Warning: dep.example.com/v1beta1 Gadget is deprecated; use dep.example.com/v1 Gadget")
		out, err := client.Kubectl(ctx, "get", "gadgets.v1beta1.dep.example.com", "-n", "dep", "--warnings-as-errors")
		native, nerr := target.Kubectl(ctx, "get", "gadgets.v1beta1.dep.example.com", "-n", "dep", "--warnings-as-errors")
		if err == nil || nerr == nil {
			t.Fatalf("--warnings-as-errors: through the client %v\n%s\nat the target %v\n%s", err, out, nerr, native)
		}
	})

	t.Run("with CRD access, a change shows at once", func(t *testing.T) {
		kubectlApply(t, ctx, target, crdWatcherRBAC)
		stopProxy(t, p)
		p.Restart(t)
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			if !followsCRDs() {
				return "crproxy does not follow the target's CRDs"
			}
			return ""
		})
		kubectlApply(t, ctx, target, gadgetCRD(true, "gadgets v1beta1 go away next release"))
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			got, native := warnings(reads[0]...)
			if got != native || native != "Warning: gadgets v1beta1 go away next release" {
				return fmt.Sprintf("through the client %q, at the target %q", got, native)
			}
			return ""
		})
		kubectlApply(t, ctx, target, gadgetCRD(false, ""))
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			got, native := warnings(reads[0]...)
			if got != "" || native != "" {
				return fmt.Sprintf("no longer deprecated: through the client %q, at the target %q", got, native)
			}
			return ""
		})
		sameWarnings(t, "")
	})

	t.Run("with CRD access, printer columns and schema follow at once", func(t *testing.T) {
		kubectlApply(t, ctx, target, gadgetCRD(false, "", true))
		kubectl(t, ctx, client, "patch", "gadgets.v1beta1.dep.example.com", "g1", "-n", "dep", "--type=merge", "-p", `{"spec":{"size":3}}`)
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			out, err := client.Kubectl(ctx, "get", "gadgets.v1beta1.dep.example.com", "-n", "dep")
			if err != nil || !strings.Contains(out, "SIZE") || !strings.Contains(out, "g1     3") {
				return fmt.Sprintf("kubectl get through the client prints no SIZE column of 3: %v\n%s", err, out)
			}
			return ""
		})
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			out, err := client.Kubectl(ctx, "explain", "gadgets.spec.size", "--api-version=dep.example.com/v1beta1")
			if err != nil || !strings.Contains(out, "How big the gadget is.") {
				return fmt.Sprintf("kubectl explain through the client: %v\n%s", err, out)
			}
			return ""
		})
	})
}
