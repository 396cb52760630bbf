package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) {
	if kubeconfig := os.Getenv(referenceEnv); kubeconfig != "" {
		os.Exit(serveReferences(kubeconfig))
	}
	clustertest.Main(m)
}

// The paths, in the order of benchEnv.paths and of figures.
const (
	pathTarget = iota
	pathCrproxy
	pathViaClient
	// pathPlainHop is a reference, not a way to use crproxy: a plain
	// reverse proxy in front of the target, in a process of its own
	// (startReferences).
	pathPlainHop
	// pathReplay is the other reference: a server that answers a read
	// from memory with the bytes the target answered it with (replay),
	// in the plain hop's process. Only B1 measures it, so it is not in
	// benchEnv.paths.
	pathReplay
	// numPaths is how many there are.
	numPaths
)

// benchPath is one way to reach the proxied resource.
type benchPath struct {
	name string
	cfg  *rest.Config
}

// benchEnv is one run's clusters and crproxy: a target and a client
// kube-apiserver on the shared etcd, and crproxy as its own process (so its
// memory is its own, it can be restarted, and it serves pprof).
type benchEnv struct {
	target, client *localcluster.APIServer
	env            *localcluster.Environment
	proxy          *crproxytest.Proxy
	dir            string
	paths          []benchPath
	// replay is the path of pathReplay (listPaths).
	replay benchPath
	// atTarget reaches the objects at the target across namespaces.
	atTarget dynamic.NamespaceableResourceInterface
	loaded   int
	// cut, once B5 or B6 set it up, stands between crproxy and the target.
	cut *localcluster.FaultProxy
	// proxyHTTP reaches crproxy straight; its port survives restarts, so
	// one client (and its connection) serves every poll.
	proxyHTTP *http.Client
}

// newBenchEnv starts the clusters and crproxy.
func newBenchEnv(t *testing.T, ctx context.Context) *benchEnv {
	e := &benchEnv{env: clustertest.Environment(t)}
	// Profiling on the target too: B3 reads both sides' live memory from
	// /debug/pprof/heap.
	e.target = clustertest.NewAPIServer(t, "target", localcluster.APIServerOptions{ExtraArgs: []string{"--profiling=true"}})
	e.client = clustertest.NewAPIServer(t, "client")
	if err := crproxytest.InstallCRD(ctx, e.target, "myresource-crd.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := crproxytest.Apply(ctx, e.target, "target-rbac.yaml"); err != nil {
		t.Fatal(err)
	}
	// The user that reaches crproxy straight is authorized by the client
	// cluster's RBAC (a SubjectAccessReview, cached), as a controller
	// with a token would be; system:masters would skip that.
	if out, err := e.client.Kubectl(ctx, "create", "clusterrolebinding", "bench-user", "--clusterrole=cluster-admin", "--user=bench-user"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	e.dir = t.TempDir()
	var err error
	cfg := crproxytest.Config("client", e.client, e.target)
	withPropagationGroup(t, ctx, e, &cfg)
	e.proxy, err = crproxytest.New(crproxytest.Options{
		Client: e.client, Config: cfg, Dir: e.dir,
		Process: true, ExtraArgs: []string{"--profiling"}, ServiceName: "crproxy-bench",
	})
	if err != nil {
		t.Fatal(err)
	}
	clustertest.ReportOnFailure(t, "crproxy", e.proxy.LogPath)
	t.Cleanup(func() { _ = e.proxy.Stop() })
	t.Cleanup(func() {
		if e.cut != nil {
			e.cut.Close()
		}
	})
	e.startProxy(t, ctx)
	if e.proxyHTTP, err = rest.HTTPClientFor(e.direct()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.proxyHTTP.CloseIdleConnections)
	dc, _ := dynamic.NewForConfig(e.target.RESTConfig())
	e.atTarget = dc.Resource(crproxytest.MyResources)
	hop, replay := startReferences(t, e.target)
	// The hop sends as the client's identity, as crproxy does (the
	// target's RBAC governs the tenant either way): a proxy in crproxy's
	// place may not read or write as the target's admin.
	hop.Impersonate = rest.ImpersonationConfig{UserName: cfg.Client.Identity()}
	e.paths = []benchPath{
		pathTarget:    {"target kube-apiserver", e.target.RESTConfig()},
		pathCrproxy:   {"crproxy straight", e.direct()},
		pathViaClient: {"through client kube-apiserver", e.client.RESTConfig()},
		// A plain hop: any proxy in crproxy's place pays at least what
		// it adds to a request that must reach the target (a write, a
		// consistent GET) as the tenant, so its ratios say which bars one
		// hop leaves room for on this machine. It is no way to use
		// crproxy: it neither authenticates its callers nor reads from a
		// mirror.
		pathPlainHop: {"plain hop to the target", hop},
	}
	e.replay = benchPath{"replay from memory", replay}
	return e
}

// listPaths are the paths B1 lists on: every path and the replay, which
// answers a list with the bytes crproxy's mirror would send, so its
// ratios say which bars sending them leaves room for on this machine.
func (e *benchEnv) listPaths() []benchPath {
	return append(slices.Clone(e.paths), e.replay)
}

// startProxy starts crproxy and waits until the client cluster serves its
// group/version.
func (e *benchEnv) startProxy(t *testing.T, ctx context.Context) {
	t.Helper()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := e.proxy.Start(startCtx); err != nil {
		t.Fatal(err)
	}
}

// direct reaches crproxy straight as a client-cluster user with a
// certificate, skipping the aggregator. It skips verifying crproxy's
// serving certificate: the cold start (B5) removes the data folder, and
// with it the certificate that one HTTP client of the run would trust.
func (e *benchEnv) direct() *rest.Config {
	cfg, err := e.proxy.DirectConfig("bench-user")
	if err != nil {
		panic(err) // a client certificate from the run's own CA
	}
	cfg.TLSClientConfig.CAFile = ""
	cfg.TLSClientConfig.Insecure = true
	return cfg
}

// objectPadding makes an object's JSON, as the apiserver serves it with
// its managedFields, about 1 KiB.
var objectPadding = strings.Repeat("x", 512)

// ownedMyResource is a MyResource in default carrying the client's owner
// labels (so the mirror holds it when it is created straight at the
// target), with spec.name set.
func ownedMyResource(name, specName string) *unstructured.Unstructured {
	return crproxytest.OwnedMyResource("default", name, specName, "client")
}

// objectName is the name of the i-th loaded object.
func objectName(i int) string { return fmt.Sprintf("obj-%06d", i) }

// load creates objects at the target, 32 at a time, until n are loaded,
// then waits until crproxy's mirror holds them all. The first listSubset
// carry subsetLabel.
func (e *benchEnv) load(t *testing.T, ctx context.Context, n int) {
	if n <= e.loaded {
		return
	}
	start, from := time.Now(), e.loaded
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		work   = make(chan int)
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				obj := ownedMyResource(objectName(i), objectPadding)
				if i < listSubset {
					labels := obj.GetLabels()
					labels[subsetLabel] = "yes"
					obj.SetLabels(labels)
				}
				if _, err := e.atTarget.Namespace("default").Create(ctx, obj, metav1.CreateOptions{}); err != nil && !failed.Swap(true) {
					t.Errorf("loading: %v", err)
				}
			}
		}()
	}
	for i := from; i < n && !failed.Load(); i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed.Load() {
		t.FailNow()
	}
	e.loaded = n
	created := time.Since(start)
	e.waitMirrored(t, ctx, n+e.extra(t, ctx, n))
	t.Logf("loaded %d objects at the target in %s (%.0f/s); mirrored after %s", n-from, created.Round(time.Millisecond), float64(n-from)/created.Seconds(), time.Since(start).Round(time.Millisecond))
}

// extra is how many objects besides the n loaded ones the target holds
// (those the watch benchmark left in its namespace).
func (e *benchEnv) extra(t *testing.T, ctx context.Context, n int) int {
	// One item and the count of the others, instead of every object.
	// (The kube-apiserver counts the rest only without a selector.)
	list, err := e.atTarget.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	total := len(list.Items)
	if rest := list.GetRemainingItemCount(); rest != nil {
		total += int(*rest)
	} else if list.GetContinue() != "" {
		t.Fatal("the target did not count the objects of a paginated list")
	}
	return total - n
}

// waitMirrored waits until crproxy's mirror holds n MyResources.
func (e *benchEnv) waitMirrored(t *testing.T, ctx context.Context, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := e.status(ctx)
		if err == nil && len(st.Targets) == 1 {
			for _, r := range st.Targets[0].Resources {
				if r.Resource == crproxytest.MyResources.Resource && r.Objects == n {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("crproxy's mirror does not hold %d objects after 5 minutes: %+v %v", n, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxyStatus is the part of crproxy's /status the benchmarks read.
type proxyStatus struct {
	Targets []struct {
		State     string `json:"state"`
		Resources []struct {
			Resource        string `json:"resource"`
			Objects         int    `json:"objects"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"resources"`
	} `json:"targets"`
}

// status reads crproxy's /status.
func (e *benchEnv) status(ctx context.Context) (proxyStatus, error) {
	var st proxyStatus
	body, err := e.getProxy(ctx, "/status")
	if err == nil {
		err = json.Unmarshal(body, &st)
	}
	return st, err
}

// getProxy GETs path from crproxy straight and returns the body of a 200.
func (e *benchEnv) getProxy(ctx context.Context, path string) ([]byte, error) {
	return getBody(ctx, e.proxyHTTP, e.direct().Host+path, nil)
}

// getBody GETs url with hc (and header) and returns the body of a 200
// answer; any other answer is an error with its status and body.
func getBody(ctx context.Context, hc *http.Client, url string, header http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, err
}

// liveBytes is what a server's Go runtime holds for live data after a
// collection: the heap's live objects plus the goroutine stacks in use (the
// HeapAlloc and Stack lines of /debug/pprof/heap?debug=1&gc=1).
func liveBytes(ctx context.Context, cfg *rest.Config) (int64, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, err
	}
	defer hc.CloseIdleConnections()
	body, err := getBody(ctx, hc, cfg.Host+"/debug/pprof/heap?debug=1&gc=1", nil)
	if err != nil {
		return 0, err
	}
	var heap, stack int64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			_, _ = fmt.Sscan(v, &heap)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			_, _ = fmt.Sscan(v, &stack)
		}
	}
	if heap == 0 {
		return 0, fmt.Errorf("no HeapAlloc in the heap profile")
	}
	return heap + stack, nil
}

// rssKiB is a process's resident set now.
func rssKiB(t *testing.T, pid int) int {
	st, err := localcluster.ReadProcStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.RSSKiB
}

// machineOf describes this machine and the versions under test.
func (e *benchEnv) machineOf(ctx context.Context) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(data), "\n", 2)[0], "MemTotal:"), "%d", &kb); err == nil {
			m.MemoryBytes = kb << 10
		}
	}
	if dc, err := discovery.NewDiscoveryClientForConfig(e.target.RESTConfig()); err == nil {
		if v, err := dc.ServerVersion(); err == nil {
			m.KubeAPIServer = v.GitVersion
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.env.Etcd.ClientURL+"/version", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		var v struct {
			Server string `json:"etcdserver"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		m.Etcd = v.Server
	}
	if binDir, err := localcluster.FindBinDir(); err == nil {
		if out, err := exec.CommandContext(ctx, filepath.Join(binDir, "crproxy"), "version").Output(); err == nil {
			m.Crproxy = strings.TrimPrefix(strings.Fields(string(out) + " ? ?")[1], "v")
		}
	}
	return m
}
