package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/tools/cache"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

func dynamicClient(t *testing.T, s *localcluster.APIServer) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kubectl get -w through the client cluster sees a change made at the
// target; a watch from a resourceVersion older than the mirror's buffer
// gets 410 Expired as an ERROR event, as from a kube-apiserver.
func TestWatchKubectlAndExpired(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "watch-ns", "client", []string{"w-1"}, "")
	startProxy(t, client, crproxytest.Config("client", client, target))
	kubectl(t, ctx, client, "create", "namespace", "watch-ns")

	cmd := client.KubectlCmd(ctx, "get", "myresources", "-n", "watch-ns", "-w", "--output-watch-events")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expectLine := func(what string, match func(string) bool) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl get -w ended before %s", what)
				}
				if match(line) {
					return
				}
			case <-timeout:
				t.Fatalf("kubectl get -w did not show %s within 20s", what)
			}
		}
	}
	expectLine("the initial object", func(l string) bool { return strings.Contains(l, "ADDED") && strings.Contains(l, "w-1") })
	kubectl(t, ctx, target, "label", "myresource", "w-1", "-n", "watch-ns", "changed=yes")
	expectLine("the change made at the target", func(l string) bool { return strings.Contains(l, "MODIFIED") && strings.Contains(l, "w-1") })

	w, err := dynamicClient(t, client).Resource(crproxytest.MyResources).Namespace("watch-ns").Watch(ctx, metav1.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatalf("watch from resourceVersion 1: %v", err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		status, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok || status.Code != 410 || status.Reason != metav1.StatusReasonExpired {
			t.Fatalf("watch from resourceVersion 1 got %s %#v; want ERROR 410 Expired", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch from resourceVersion 1 sent nothing")
	}
}

// watchListGate turns client-go's WatchListClient feature on or off.
type watchListGate struct {
	clientfeatures.Gates
	on bool
}

func (g watchListGate) Enabled(f clientfeatures.Feature) bool {
	if f == clientfeatures.WatchListClient {
		return g.on
	}
	return g.Gates.Enabled(f)
}

// A client-go informer in the client cluster, with streaming lists
// (WatchListClient, sendInitialEvents) on and off, syncs and sees objects
// added and changed at the target.
func TestInformersWithAndWithoutWatchList(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "informer-ns", "client", []string{"i-0"}, "")
	startProxy(t, client, crproxytest.Config("client", client, target))
	targetClient := dynamicClient(t, target)

	original := clientfeatures.FeatureGates()
	t.Cleanup(func() { clientfeatures.ReplaceFeatureGates(original) })
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("WatchListClient=%v", on), func(t *testing.T) {
			clientfeatures.ReplaceFeatureGates(watchListGate{Gates: original, on: on})
			factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dynamicClient(t, client), 0, "informer-ns", nil)
			informer := factory.ForResource(crproxytest.MyResources).Informer()
			var mu sync.Mutex
			seen := map[string]string{} // name -> spec.name
			record := func(obj any) {
				u := obj.(*unstructured.Unstructured)
				v, _, _ := unstructured.NestedString(u.Object, "spec", "name")
				mu.Lock()
				seen[u.GetName()] = v
				mu.Unlock()
			}
			_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, n any) { record(n) }})
			ictx, cancel := context.WithCancel(ctx)
			defer cancel()
			factory.Start(ictx.Done())
			if !cache.WaitForCacheSync(ictx.Done(), informer.HasSynced) {
				t.Fatal("informer never synced")
			}
			name := fmt.Sprintf("i-%v", on)
			if _, err := targetClient.Resource(crproxytest.MyResources).Namespace("informer-ns").Create(ctx, crproxytest.OwnedMyResource("informer-ns", name, name, "client"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			obj, err := targetClient.Resource(crproxytest.MyResources).Namespace("informer-ns").Get(ctx, "i-0", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_ = unstructured.SetNestedField(obj.Object, "changed-"+name, "spec", "name")
			if _, err := targetClient.Resource(crproxytest.MyResources).Namespace("informer-ns").Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				mu.Lock()
				_, added := seen[name]
				changed := seen["i-0"] == "changed-"+name
				mu.Unlock()
				if added && changed {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("informer saw %v; want %s added and i-0 changed", seen, name)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// Pagination over 1,200 objects with limit 500 returns each object exactly
// once while objects change at the target.
func TestPaginationIsConsistentWhileObjectsChange(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	kubectl(t, ctx, target, "create", "namespace", "page-ns")
	tc := dynamicClient(t, target).Resource(crproxytest.MyResources).Namespace("page-ns")
	const total = 1200
	var wg sync.WaitGroup
	errs := make(chan error, total)
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := tc.Create(ctx, crproxytest.OwnedMyResource("page-ns", fmt.Sprintf("p-%04d", i), fmt.Sprintf("p-%04d", i), "client"), metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	startProxy(t, client, crproxytest.Config("client", client, target))

	stop := make(chan struct{})
	churned := make(chan int)
	go func() {
		n := 0
		defer func() { churned <- n }()
		for i := 0; ; i = (i + 37) % total {
			select {
			case <-stop:
				return
			default:
			}
			patch := fmt.Appendf(nil, `{"metadata":{"labels":{"churn":"%d"}}}`, n)
			if _, err := tc.Patch(ctx, fmt.Sprintf("p-%04d", i), "application/merge-patch+json", patch, metav1.PatchOptions{}); err == nil {
				n++
			}
		}
	}()
	cc := dynamicClient(t, client).Resource(crproxytest.MyResources).Namespace("page-ns")
	counts := map[string]int{}
	opts := metav1.ListOptions{Limit: 500}
	pages := 0
	for {
		list, err := cc.List(ctx, opts)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		for _, item := range list.Items {
			counts[item.GetName()]++
		}
		if list.GetContinue() == "" {
			break
		}
		opts.Continue = list.GetContinue()
		time.Sleep(200 * time.Millisecond) // let the churn land between pages
	}
	close(stop)
	if n := <-churned; n == 0 {
		t.Fatal("no object changed during the paginated list; the test proved nothing")
	}
	if pages != 3 || len(counts) != total {
		t.Fatalf("%d pages, %d distinct objects; want 3 pages and %d objects", pages, len(counts), total)
	}
	for name, c := range counts {
		if c != 1 {
			t.Fatalf("%s listed %d times", name, c)
		}
	}
}
