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

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
)

// benchColdStart (B5) grows the data to bench.coldstart-objects, cuts the
// target off (a partition: the target keeps running, for B6), and stops and
// starts crproxy over its bbolt file three times. It records the time from
// the process's start until a consistent list (kubectl's) is served with
// every object (median and max), and crproxy's peak resident memory against
// the objects' total JSON size. The target's column is the same list from the
// target while it was up. Bar: first list within 1 s; RSS at most 2x the
// JSON.
func benchColdStart(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	e.load(t, ctx, *flagColdObjects)
	n := e.loaded + e.extra(t, ctx, e.loaded)
	// For scale: the same consistent list from the target, while it is up.
	targetHC, _ := rest.HTTPClientFor(e.paths[pathTarget].cfg)
	targetList, err := listOnce(ctx, targetHC, e.paths[pathTarget], "resourceVersion=", n)
	if err != nil {
		t.Fatal(err)
	}

	e.cut = e.cutTarget(t, ctx, n)
	e.cut.Partition()
	// The target has just served 100,000 objects: let it collect its
	// garbage before crproxy's start competes with it for the two cores.
	time.Sleep(10 * time.Second)
	var runs []coldStart
	for i := range coldStarts {
		_ = e.proxy.Stop()
		runs = append(runs, e.coldStart(t, ctx, n))
		t.Logf("cold start %d: first page %s, /readyz %s, first list %s, peak RSS %d MiB", i,
			runs[i].firstPage.Round(time.Millisecond), runs[i].ready.Round(time.Millisecond), runs[i].firstList.Round(time.Millisecond), runs[i].status.PeakRSSKiB>>10)
	}
	profileHeap(t, ctx, e, "B5-coldstart")

	pick := func(f func(coldStart) time.Duration, q float64) time.Duration {
		var d []time.Duration
		for _, run := range runs {
			d = append(d, f(run))
		}
		return percentile(d, q)
	}
	firstList := pick(func(c coldStart) time.Duration { return c.firstList }, 50)
	var peakKiB int
	for _, run := range runs {
		peakKiB = max(peakKiB, run.status.PeakRSSKiB)
	}
	last := runs[len(runs)-1]
	jsonMiB := float64(last.listBytes) / (1 << 20)
	peakMiB := float64(peakKiB) / 1024
	name := fmt.Sprintf("restart over %d objects, target down, %d times", n, coldStarts)
	only := func(d time.Duration) figures { return targetAndCrproxy(math.NaN(), ms(d)) }
	r.add(barAbsolute(row{ID: "B5", Case: name, Metric: "start to first consistent list, median (target: the same list, warm)", Unit: "ms"}, "≤ 1 s", firstList <= time.Second),
		targetAndCrproxy(ms(targetList), ms(firstList)))
	r.add(row{ID: "B5", Case: name, Metric: "start to first consistent list, max", Unit: "ms"}, only(pick(func(c coldStart) time.Duration { return c.firstList }, 100)))
	r.add(row{ID: "B5", Case: name, Metric: "start to first page of 500 (kubectl's chunking), median", Unit: "ms"}, only(pick(func(c coldStart) time.Duration { return c.firstPage }, 50)))
	r.add(row{ID: "B5", Case: name, Metric: "start to /readyz, median", Unit: "ms"}, only(pick(func(c coldStart) time.Duration { return c.ready }, 50)))
	r.add(barAbsolute(row{ID: "B5", Case: name, Metric: fmt.Sprintf("peak RSS, max (objects' JSON: %.0f MiB)", jsonMiB), Unit: "MiB"},
		fmt.Sprintf("≤ 2x JSON (%.0f MiB)", 2*jsonMiB), peakMiB <= 2*jsonMiB),
		targetAndCrproxy(math.NaN(), peakMiB))
	r.note("B5: crproxy's peak RSS is %.2fx the objects' JSON (%.0f MiB for %.0f MiB); 5 s after the last start's first list its RSS is %d MiB, of which %d MiB are mapped files (RssFile: crproxy's own binary, about 50 MiB, and the bbolt database's pages).",
		peakMiB/jsonMiB, peakMiB, jsonMiB, last.status.RSSKiB>>10, last.status.FileRSSKiB>>10)
}

// coldStarts is how many times B5 restarts crproxy.
const coldStarts = 3

// coldStart is one start of crproxy over its file with the target cut off.
type coldStart struct {
	firstPage, ready, firstList time.Duration
	listBytes                   int
	// status is crproxy's footprint 5 s after the first list.
	status localcluster.ProcStatus
}

// coldStart starts the stopped crproxy and times, from the start, kubectl's
// first page, /readyz, and the first consistent list with all n objects.
func (e *benchEnv) coldStart(t *testing.T, ctx context.Context, n int) coldStart {
	hc, err := rest.HTTPClientFor(e.direct())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	var c coldStart
	started := time.Now()
	ready := make(chan error, 1)
	go func() {
		// Ready as the process itself reports it (/readyz), not as the
		// client cluster's APIService later shows it.
		err := e.proxy.Process().Start(ctx)
		c.ready = time.Since(started)
		ready <- err
	}()
	// get GETs path until it answers 200 and returns the body.
	get := func(path string) *http.Response {
		last := "no answer"
		for deadline := started.Add(2 * time.Minute); time.Now().Before(deadline); {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.direct().Host+path, nil)
			resp, err := hc.Do(req)
			if err == nil && resp.StatusCode == http.StatusOK {
				return resp
			}
			if err != nil {
				last = err.Error()
			} else {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
				resp.Body.Close()
				last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(b))
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("GET %s: no 200 within 2 minutes of the start; the last answer: %s", path, last)
		return nil
	}
	// kubectl lists in pages of 500: its first answer is the first page.
	resp := get("/apis/example.com/v1/myresources?limit=500")
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.firstPage = time.Since(started)

	resp = get("/apis/example.com/v1/myresources")
	var body objectCounter
	_, _ = io.CopyBuffer(&body, resp.Body, make([]byte, 256<<10))
	resp.Body.Close()
	c.firstList, c.listBytes = time.Since(started), int(body.n)
	if got := body.objects(); got != n {
		t.Fatalf("the first list after the restart has %d of %d objects", got, n)
	}
	if !strings.Contains(resp.Header.Get("Warning"), "unreachable") {
		t.Errorf("the first list after the restart has no Warning that the target is unreachable: %q", resp.Header.Get("Warning"))
	}
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // the peak may come after the first list: the mirror settles
	if c.status, err = localcluster.ReadProcStatus(e.proxy.Process().PID()); err != nil {
		t.Fatal(err)
	}
	return c
}

// cutTarget puts a FaultProxy between crproxy and the target and restarts
// crproxy, whose configuration then reaches the target through the proxy,
// until its mirror holds the n objects again. The new address is a new
// selection of the target (mirror.selection): crproxy forgets the file's
// cache and fills it anew, so B5's restarts run over a file that the same
// configuration filled, as in production. The proxy lives until the run
// ends.
func (e *benchEnv) cutTarget(t *testing.T, ctx context.Context, n int) *localcluster.FaultProxy {
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
	cfg := crproxytest.Config("client", e.client, e.target)
	cfg.Targets[0].Kubeconfig = kubeconfig
	if err := e.proxy.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	_ = e.proxy.Stop()
	e.startProxy(t, ctx)
	e.waitMirrored(t, ctx, n)
	return cut
}
