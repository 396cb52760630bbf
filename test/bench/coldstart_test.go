package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// benchColdStart (B5) grows the data to bench.coldstart-objects, stops
// crproxy, cuts the target off (a partition: the target keeps running, for
// B6) and starts crproxy again over its bbolt file. It records the time
// from the process's start until a consistent list (kubectl's) is served
// with every object, and crproxy's peak resident memory against the
// objects' total JSON size. The target's column is the same list from the
// target while it was up. Bar: first list within 1 s; RSS at most 2x the
// JSON.
func benchColdStart(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	e.load(t, ctx, *flagColdObjects)
	n := e.loaded + e.extra(t, ctx, e.loaded)
	// For scale: the same consistent list from the target, while it is up.
	targetHC, _ := rest.HTTPClientFor(e.paths[pathTarget].cfg)
	targetList, err := listOnce(ctx, targetHC, e.paths[pathTarget], "", n)
	if err != nil {
		t.Fatal(err)
	}

	e.cut = e.cutTarget(t)
	e.proxy.Stop()
	e.cut.Partition()

	hc, err := rest.HTTPClientFor(e.direct())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	started := time.Now()
	ready := make(chan error, 1)
	var readyAfter time.Duration
	go func() {
		err := e.proxy.Start(ctx)
		readyAfter = time.Since(started)
		ready <- err
	}()
	// kubectl lists in pages of 500: its first answer is the first page.
	var firstPage time.Duration
	for deadline := started.Add(2 * time.Minute); firstPage == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no page served within 2 minutes of the start")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.direct().Host+"/apis/example.com/v1/myresources?limit=500", nil)
		resp, err := hc.Do(req)
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			firstPage = time.Since(started)
		}
	}
	var firstList time.Duration
	var listBytes int
	for deadline := started.Add(2 * time.Minute); firstList == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no list served within 2 minutes of the start")
		}
		select {
		case err := <-ready:
			if err != nil {
				t.Fatal(err)
			}
			ready = nil
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.direct().Host+"/apis/example.com/v1/myresources", nil)
		resp, err := hc.Do(req)
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if got := bytes.Count(body.Bytes(), []byte(`"kind":"MyResource"`)); got != n {
				t.Fatalf("the first list after the restart has %d of %d objects", got, n)
			}
			if !strings.Contains(resp.Header.Get("Warning"), "unreachable") {
				t.Errorf("the first list after the restart has no Warning that the target is unreachable: %q", resp.Header.Get("Warning"))
			}
			firstList, listBytes = time.Since(started), body.Len()
		}
	}
	if ready != nil {
		if err := <-ready; err != nil {
			t.Fatal(err)
		}
	}
	profileHeap(t, ctx, e, "B5-coldstart")
	time.Sleep(5 * time.Second) // the peak may come after the first list: the mirror settles
	st, err := localcluster.ReadProcStatus(e.proxy.PID())
	if err != nil {
		t.Fatal(err)
	}
	jsonMiB := float64(listBytes) / (1 << 20)
	peakMiB := float64(st.PeakRSSKiB) / 1024
	name := fmt.Sprintf("restart over %d objects, target down", n)
	r.add(barAbsolute(row{ID: "B5", Case: name, Metric: "start to first consistent list (target: the same list, warm)", Unit: "ms"}, "≤ 1 s", firstList <= time.Second),
		figures{ms(targetList), ms(firstList), math.NaN()})
	r.add(row{ID: "B5", Case: name, Metric: "start to first page of 500 (kubectl's chunking)", Unit: "ms"}, figures{math.NaN(), ms(firstPage), math.NaN()})
	r.add(row{ID: "B5", Case: name, Metric: "start to /readyz", Unit: "ms"}, figures{math.NaN(), ms(readyAfter), math.NaN()})
	r.add(barAbsolute(row{ID: "B5", Case: name, Metric: fmt.Sprintf("peak RSS (objects' JSON: %.0f MiB)", jsonMiB), Unit: "MiB"},
		fmt.Sprintf("≤ 2x JSON (%.0f MiB)", 2*jsonMiB), peakMiB <= 2*jsonMiB),
		figures{math.NaN(), peakMiB, math.NaN()})
	r.note("B5: crproxy's peak RSS is %.2fx the objects' JSON (%.0f MiB for %.0f MiB); 5 s after the first list its RSS is %d MiB, of which %d MiB are mapped files (RssFile: crproxy's own binary, about 50 MiB, and the bbolt database's pages).",
		peakMiB/jsonMiB, peakMiB, jsonMiB, st.RSSKiB>>10, st.FileRSSKiB>>10)
}

// cutTarget puts a FaultProxy between crproxy and the target, effective at
// crproxy's next start: its configuration then reaches the target through
// the proxy. It lives until the run ends.
func (e *benchEnv) cutTarget(t *testing.T) *localcluster.FaultProxy {
	cut, err := localcluster.NewFaultProxy(strings.TrimPrefix(e.target.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	viaCut := e.target.RESTConfig()
	viaCut.Host = "https://" + cut.Addr()
	kubeconfig := filepath.Join(e.dir, "target-via-cut.kubeconfig")
	if err := localcluster.WriteKubeconfig(kubeconfig, "target", viaCut); err != nil {
		t.Fatal(err)
	}
	writeProxyConfig(t, e.configPath, e.client, kubeconfig)
	return cut
}
