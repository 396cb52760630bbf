package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// An informer through the client cluster keeps receiving changes after
// crproxy restarts (its watch is re-established against a mirror loaded
// from disk) while writes go on.
func TestInformerAcrossCrproxyRestart(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	p := startProxy(t, client, crproxytest.Config("client", client, target))
	dyn := dynamicClient(t, client)
	rc := dyn.Resource(crproxytest.MyResources).Namespace("default")

	var mu sync.Mutex
	seen := map[string]bool{}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, "default", nil)
	inf := factory.ForResource(crproxytest.MyResources).Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		mu.Lock()
		seen[obj.(*unstructured.Unstructured).GetName()] = true
		mu.Unlock()
	}})
	stop := make(chan struct{})
	defer close(stop)
	go inf.Run(stop)
	create := func(name string) {
		u := crproxytest.OwnedMyResource("default", name, name, "client")
		if _, err := rc.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitSeen := func(name string) {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := seen[name]
			mu.Unlock()
			if ok {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the informer never saw %s", name)
	}
	for i := range 20 {
		create(fmt.Sprintf("before-%d", i))
	}
	waitSeen("before-19")
	stopProxy(t, p)
	p.Restart(t)
	for i := range 50 {
		name := fmt.Sprintf("after-%d", i)
		for {
			u := crproxytest.OwnedMyResource("default", name, name, "client")
			_, err := rc.Create(ctx, u, metav1.CreateOptions{})
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitSeen("after-49")
}
