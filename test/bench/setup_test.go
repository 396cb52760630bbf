package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/cli/serve"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

var myResources = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "myresources"}

// benchPath is one way to reach the proxied resource.
type benchPath struct {
	name string
	cfg  *rest.Config
}

// prepareTarget installs the documentation's CRD and RBAC at target.
func prepareTarget(t *testing.T, ctx context.Context, target *localcluster.APIServer) {
	root, _ := localcluster.ModuleRoot()
	testdata := filepath.Join(root, "test", "e2e", "testdata")
	for _, f := range []string{"myresource-crd.yaml", "target-rbac.yaml"} {
		if _, err := target.Kubectl(ctx, "apply", "-f", filepath.Join(testdata, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := target.Kubectl(ctx, "wait", "--for=condition=Established", "crd/myresources.example.com"); err != nil {
		t.Fatal(err)
	}
}

// startProxy runs crproxy for client → target until the test ends and
// returns the three paths to compare: the target, crproxy straight (as a
// client-cluster user with a certificate), and the client kube-apiserver.
func startProxy(t *testing.T, ctx context.Context, client, target *localcluster.APIServer) []benchPath {
	dir := t.TempDir()
	o := serve.NewOptions()
	o.ConfigFile = writeProxyConfig(t, dir, client, target)
	o.DataDir = filepath.Join(dir, "data")
	o.Serving.BindPort, _ = localcluster.FreePort()
	addr := make(chan string, 1)
	o.Ready = func(a string) { addr <- a }
	pctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() { _ = serve.Run(pctx, o) }()
	proxyAddr := <-addr
	if _, err := client.Kubectl(ctx, "wait", "--for=condition=Available", "apiservice/v1.example.com", "--timeout=120s"); err != nil {
		t.Fatal(err)
	}
	return []benchPath{{"target kube-apiserver", target.RESTConfig()}, {"crproxy straight", directConfig(client, proxyAddr)}, {"through client kube-apiserver", client.RESTConfig()}}
}

// writeProxyConfig writes, in dir, the configuration proxying
// myresources.example.com/v1 of target to client, and returns its path.
func writeProxyConfig(t *testing.T, dir string, client, target *localcluster.APIServer) string {
	path := filepath.Join(dir, "c.yaml")
	config := fmt.Sprintf("client: {name: client, kubeconfig: %s}\ntargets: [{name: target, kubeconfig: %s}]\nexperimental: {proxy: {customResources: {myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}}}}}\n", client.KubeconfigPath, target.KubeconfigPath)
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// directConfig reaches crproxy at address (host:port) as a client-cluster
// user with a certificate, skipping the aggregator.
func directConfig(client *localcluster.APIServer, address string) *rest.Config {
	direct, _ := client.ConfigFor("bench-user")
	direct.Host = "https://" + address
	direct.TLSClientConfig.CAData = nil
	direct.TLSClientConfig.Insecure = true
	return direct
}

// ownedMyResource is a MyResource in default carrying the client's owner
// labels (so the mirror holds it when it is created straight at the
// target), with spec.name set.
func ownedMyResource(name, specName string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("MyResource")
	u.SetNamespace("default")
	u.SetName(name)
	u.SetLabels(map[string]string{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default"})
	_ = unstructured.SetNestedField(u.Object, specName, "spec", "name")
	return u
}
