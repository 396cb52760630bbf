package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
	config := fmt.Sprintf("client: {name: client, kubeconfig: %s}\ntargets: [{name: target, kubeconfig: %s}]\nexperimental: {proxy: {customResources: {myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}}}}}\n", client.KubeconfigPath, target.KubeconfigPath)
	_ = os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(config), 0o644)
	o := serve.NewOptions()
	o.ConfigFile = filepath.Join(dir, "c.yaml")
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
	direct, _ := client.ConfigFor("bench-user")
	direct.Host = "https://" + proxyAddr
	direct.TLSClientConfig.CAData = nil
	direct.TLSClientConfig.Insecure = true
	return []benchPath{{"target kube-apiserver", target.RESTConfig()}, {"crproxy straight", direct}, {"through client kube-apiserver", client.RESTConfig()}}
}
