package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/pkg/config"
)

var (
	flagTenants       = flag.String("bench.tenants", "20,100", "B7: numbers of tenants on the target, each with its own crproxy")
	flagTenantObjects = flag.Int("bench.tenant-objects", 100, "B7: objects per tenant")
	flagTenantRate    = flag.Float64("bench.tenant-rate", 2, "B7: consistent lists per second per tenant")
	flagTenantWindow  = flag.Duration("bench.tenant-window", 20*time.Second, "B7: load time per tenant count and path")
)

// tenantsNamespace holds B7's objects at the target.
const tenantsNamespace = "tenants"

// tenantsRBAC lets every identity at the target use MyResources as the
// documentation's client role does: B7's tenants are many identities.
const tenantsRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bench-tenants
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: vcluster-proxy-client
subjects:
- kind: Group
  name: system:authenticated
  apiGroup: rbac.authorization.k8s.io
`

// benchTenant is one of B7's tenants: a client with a crproxy of its own
// (unregistered, reached straight; all share the bench's client cluster
// for authentication and namespaces), and the same reads sent straight to
// the target as its identity with its owner selector, what a
// pass-through proxy sends.
type benchTenant struct {
	name  string
	proxy *crproxytest.Proxy
	// viaCrproxy and straight are the tenant's consistent list on each way.
	viaCrproxy, straight           string
	viaCrproxyHTTP, straightHTTP   *http.Client
	viaCrproxyConfig, targetConfig *rest.Config
}

// tenantLoad is what one load of B7 measured.
type tenantLoad struct {
	reads, failed int64
	latencies     []time.Duration
	window        time.Duration
	targetCPU     time.Duration
	etcdCPU       time.Duration
	etcdWrites    float64
	crproxyCPU    time.Duration
}

// benchTenants is B7: many tenants on one target, each with its own
// crproxy and objects, each making consistent lists at a steady rate,
// through crproxy and then the same reads straight at the target, with
// what each way costs the target and etcd.
func benchTenants(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	if out, err := crproxytest.ApplyYAML(ctx, e.target, tenantsRBAC); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := e.target.Kubectl(ctx, "create", "namespace", tenantsNamespace); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var counts []int
	for _, s := range strings.Split(*flagTenants, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			t.Fatalf("bench.tenants: %q", s)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	var tenants []*benchTenant
	for _, n := range counts {
		start := time.Now()
		tenants = append(tenants, e.startTenants(t, ctx, len(tenants), n)...)
		t.Logf("B7: %d tenants with %d objects each, started and mirrored in %s", n, *flagTenantObjects, time.Since(start).Round(time.Millisecond))
		idle := e.measureTenants(t, ctx, nil, false)
		straight := e.measureTenants(t, ctx, tenants, true)
		through := e.measureTenants(t, ctx, tenants, false)
		var rss float64
		for _, tn := range tenants {
			rss += float64(rssKiB(t, tn.proxy.Process().PID())) / 1024
		}
		addTenantRows(r, n, idle, straight, through, rss/float64(n))
	}
}

// startTenants starts tenants from..n-1: their objects at the target,
// their crproxy, and waits until each one's mirror holds its objects.
func (e *benchEnv) startTenants(t *testing.T, ctx context.Context, from, n int) []*benchTenant {
	objects := *flagTenantObjects
	var wg sync.WaitGroup
	var failed atomic.Bool
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				tenant := fmt.Sprintf("tenant-%03d", i/objects)
				obj := crproxytest.OwnedMyResource(tenantsNamespace, fmt.Sprintf("%s-%03d", tenant, i%objects), objectPadding, tenant)
				if _, err := e.atTarget.Namespace(tenantsNamespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !failed.Swap(true) {
					t.Errorf("B7 loading: %v", err)
				}
			}
		}()
	}
	for i := from * objects; i < n*objects && !failed.Load(); i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed.Load() {
		t.FailNow()
	}

	out := make([]*benchTenant, n-from)
	errs := make(chan error, n-from)
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				tn, err := e.startTenant(t, ctx, i)
				if err != nil {
					errs <- err
					continue
				}
				out[i-from] = tn
			}
		}()
	}
	for i := from; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return out
}

// startTenant starts tenant i's crproxy and waits until its mirror holds
// the tenant's objects.
func (e *benchEnv) startTenant(t *testing.T, ctx context.Context, i int) (*benchTenant, error) {
	name := fmt.Sprintf("tenant-%03d", i)
	dir := filepath.Join(e.dir, "tenants", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := crproxytest.New(crproxytest.Options{
		Client: e.client, Config: crproxytest.Config(name, e.client, e.target), Dir: dir,
		Process: true, Unregistered: true, ServiceName: "crproxy-" + name,
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = p.Stop() })
	if err := p.Start(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	tn := &benchTenant{name: name, proxy: p}
	if tn.viaCrproxyConfig, err = p.DirectConfig("bench-user"); err != nil {
		return nil, err
	}
	if tn.viaCrproxyHTTP, err = rest.HTTPClientFor(tn.viaCrproxyConfig); err != nil {
		return nil, err
	}
	tn.targetConfig = e.target.RESTConfig()
	tn.targetConfig.Impersonate = rest.ImpersonationConfig{UserName: "loft:vcluster:p-default:" + name}
	if tn.straightHTTP, err = rest.HTTPClientFor(tn.targetConfig); err != nil {
		return nil, err
	}
	const path = "/apis/example.com/v1/myresources"
	tn.viaCrproxy = tn.viaCrproxyConfig.Host + path
	owner := labels.SelectorFromSet(config.Client{Name: name}.OwnerLabels()).String()
	tn.straight = tn.targetConfig.Host + path + "?labelSelector=" + owner
	// The mirror holds the tenant's objects.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var c objectCounter
		if err := tn.list(ctx, tn.viaCrproxyHTTP, tn.viaCrproxy+"?resourceVersion=0", &c); err == nil && c.objects() == *flagTenantObjects {
			return tn, nil
		} else if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: the mirror holds %d of %d objects after 2 minutes (%v)", name, c.objects(), *flagTenantObjects, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// list reads url with hc into w and fails on anything but 200 without a
// Warning (a consistent read must not be degraded).
func (tn *benchTenant) list(ctx context.Context, hc *http.Client, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if w := resp.Header.Get("Warning"); w != "" {
		return fmt.Errorf("%s: Warning %q", url, w)
	}
	return nil
}

// measureTenants runs tenants' consistent lists at bench.tenant-rate each
// for bench.tenant-window, straight at the target or through their
// crproxies (none: an idle window), and measures what the target, etcd
// and the crproxies spent meanwhile.
func (e *benchEnv) measureTenants(t *testing.T, ctx context.Context, tenants []*benchTenant, straight bool) tenantLoad {
	var l tenantLoad
	cpu := func(pid int) time.Duration {
		d, err := localcluster.ReadProcCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	crproxyCPU := func() time.Duration {
		var sum time.Duration
		for _, tn := range tenants {
			sum += cpu(tn.proxy.Process().PID())
		}
		return sum
	}
	writesBefore := e.etcdWrites(t, ctx)
	targetBefore, etcdBefore, crproxyBefore := cpu(e.target.PID()), cpu(e.env.Etcd.PID()), crproxyCPU()
	start := time.Now()
	loadCtx, cancel := context.WithTimeout(ctx, *flagTenantWindow)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / *flagTenantRate)
	for i, tn := range tenants {
		hc, url := tn.viaCrproxyHTTP, tn.viaCrproxy
		if straight {
			hc, url = tn.straightHTTP, tn.straight
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the tenants' first reads over one interval.
			first := time.NewTimer(interval * time.Duration(i) / time.Duration(len(tenants)))
			defer first.Stop()
			select {
			case <-loadCtx.Done():
				return
			case <-first.C:
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				var c objectCounter
				began := time.Now()
				err := tn.list(loadCtx, hc, url, &c)
				took := time.Since(began)
				if loadCtx.Err() != nil {
					return
				}
				mu.Lock()
				if err != nil || c.objects() != *flagTenantObjects {
					if l.failed++; l.failed == 1 {
						t.Logf("B7: %s: %v (%d objects)", tn.name, err, c.objects())
					}
				} else {
					l.reads++
					l.latencies = append(l.latencies, took)
				}
				mu.Unlock()
				select {
				case <-loadCtx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	<-loadCtx.Done()
	wg.Wait()
	l.window = time.Since(start)
	l.targetCPU = cpu(e.target.PID()) - targetBefore
	l.etcdCPU = cpu(e.env.Etcd.PID()) - etcdBefore
	l.crproxyCPU = crproxyCPU() - crproxyBefore
	l.etcdWrites = e.etcdWrites(t, ctx) - writesBefore
	return l
}

// etcdWrites is how many puts and deletes the shared etcd has applied.
func (e *benchEnv) etcdWrites(t *testing.T, ctx context.Context) float64 {
	body, err := getBody(ctx, http.DefaultClient, e.env.Etcd.ClientURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, name := range []string{"etcd_mvcc_put_total", "etcd_mvcc_delete_total"} {
		if err := eachSample(body, name, func(_ map[string]string, v float64) { n += v }); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// addTenantRows records B7 for n tenants: per 1,000 reads, what the
// target and etcd spent (the target column is the reads sent straight,
// the crproxy column the reads through the tenants' crproxies), the
// latencies, and each crproxy's CPU and memory.
func addTenantRows(r *report, n int, idle, straight, through tenantLoad, rssPerTenant float64) {
	base := row{ID: "B7", Case: fmt.Sprintf("%d tenants × %d objects, %g consistent lists/s each", n, *flagTenantObjects, *flagTenantRate)}
	per1000 := func(l tenantLoad, v float64) float64 {
		if l.reads == 0 {
			return math.NaN()
		}
		return v / float64(l.reads) * 1000
	}
	// What a load cost beyond what the clusters spend anyway (leases,
	// controllers, events): the idle window's rate, scaled to the load's
	// window, taken off.
	aboveIdle := func(l tenantLoad, v, idleV float64) float64 {
		return max(0, v-idleV*l.window.Seconds()/idle.window.Seconds())
	}
	targetCPU := func(l tenantLoad) float64 { return aboveIdle(l, l.targetCPU.Seconds(), idle.targetCPU.Seconds()) }
	etcdCPU := func(l tenantLoad) float64 { return aboveIdle(l, l.etcdCPU.Seconds(), idle.etcdCPU.Seconds()) }
	etcdWrites := func(l tenantLoad) float64 { return aboveIdle(l, l.etcdWrites, idle.etcdWrites) }
	add := func(metric, unit string, s, c float64, bar func(row, figures) row) {
		rw := base
		rw.Metric, rw.Unit = metric, unit
		f := targetAndCrproxy(s, c)
		if bar != nil {
			rw = bar(rw, f)
		}
		r.add(rw, f)
	}
	add("reads per second", "/s", float64(straight.reads)/straight.window.Seconds(), float64(through.reads)/through.window.Seconds(), nil)
	add("failed reads", "", float64(straight.failed), float64(through.failed), nil)
	add("target kube-apiserver CPU per 1,000 reads, above idle", "s", per1000(straight, targetCPU(straight)), per1000(through, targetCPU(through)),
		func(rw row, f figures) row { return barAtMost(rw, 1, f) })
	add("etcd CPU per 1,000 reads, above idle", "s", per1000(straight, etcdCPU(straight)), per1000(through, etcdCPU(through)), nil)
	writes := per1000(through, etcdWrites(through))
	add("etcd writes per 1,000 reads, above idle", "", per1000(straight, etcdWrites(straight)), writes,
		func(rw row, _ figures) row { return barAbsolute(rw, "≤ 10 (0.01 per read)", writes <= 10) })
	add("read p50", "ms", ms(percentile(straight.latencies, 50)), ms(percentile(through.latencies, 50)), nil)
	add("read p99", "ms", ms(percentile(straight.latencies, 99)), ms(percentile(through.latencies, 99)), nil)
	add("crproxy CPU per tenant", "ms/s", math.NaN(), through.crproxyCPU.Seconds()*1000/through.window.Seconds()/float64(n), nil)
	add("crproxy CPU per 1,000 reads", "s", math.NaN(), per1000(through, through.crproxyCPU.Seconds()), nil)
	add("crproxy RSS per tenant", "MiB", math.NaN(), rssPerTenant, nil)
	r.note("B7 %d tenants: in the idle window (no reads) the target kube-apiserver used %.0f ms/s of CPU and etcd %.0f ms/s, and etcd applied %.1f writes/s (leases, events of both clusters); the rows \"above idle\" take that off.",
		n, idle.targetCPU.Seconds()*1000/idle.window.Seconds(), idle.etcdCPU.Seconds()*1000/idle.window.Seconds(), idle.etcdWrites/idle.window.Seconds())
}
