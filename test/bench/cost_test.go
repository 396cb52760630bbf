package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// requestCounts is a kube-apiserver's apiserver_request_total summed by
// verb and resource ("LIST example.com/myresources", "GET /readyz" for a
// path without a resource), without the churner's ConfigMap requests and
// the benchmark's own scrapes of /metrics.
type requestCounts map[string]float64

// proxiedResource is the key part of the proxied resource in requestCounts.
const proxiedResource = "example.com/myresources"

// mutatingVerbs are apiserver_request_total's verbs that change state.
var mutatingVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// subjectAccessReviews is the key of the SubjectAccessReviews that crproxy
// makes in the client cluster to authorize a caller of its own port.
const subjectAccessReviews = "POST authorization.k8s.io/subjectaccessreviews"

// meter measures what reads through crproxy cost: the requests the target
// served meanwhile (its apiserver_request_total), the
// SubjectAccessReviews the client cluster served (crproxy authorizes the
// straight path's user with one per distinct request attributes, cached
// 10 s), and the time crproxy spent answering them (its
// crproxy_request_duration_seconds: what a path's latency has beyond it is
// the hop to crproxy).
type meter struct {
	target, client, proxy          *http.Client
	targetCfg, clientCfg, proxyCfg *rest.Config
	// failed, once a /metrics could not be read, ends the cost figures.
	failed error
}

// newMeter reads both clusters' /metrics as their admin.
func newMeter(t *testing.T, e *benchEnv) *meter {
	m := &meter{targetCfg: e.target.RESTConfig(), clientCfg: e.client.RESTConfig(), proxy: e.proxyHTTP, proxyCfg: e.direct()}
	var err error
	if m.target, err = rest.HTTPClientFor(m.targetCfg); err != nil {
		t.Fatal(err)
	}
	if m.client, err = rest.HTTPClientFor(m.clientCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.target.CloseIdleConnections)
	t.Cleanup(m.client.CloseIdleConnections)
	return m
}

// usage is what a load cost: the requests the target and the client
// cluster served, and the time crproxy took to answer.
type usage struct {
	target, client requestCounts
	proxy          handlerTime
}

// during runs load and returns what it cost; ok is false (and the load
// ran all the same) once a /metrics could not be read, which the report's
// notes say once.
func (m *meter) during(ctx context.Context, r *report, id string, load func()) (u usage, ok bool) {
	if m.failed != nil {
		load()
		return usage{}, false
	}
	read := func() (usage, error) {
		t, err := targetRequests(ctx, m.target, m.targetCfg)
		if err != nil {
			return usage{}, fmt.Errorf("target: %w", err)
		}
		c, err := targetRequests(ctx, m.client, m.clientCfg)
		if err != nil {
			return usage{}, fmt.Errorf("client cluster: %w", err)
		}
		p, err := handlerTimes(ctx, m.proxy, m.proxyCfg)
		if err != nil {
			return usage{}, fmt.Errorf("crproxy: %w", err)
		}
		return usage{t, c, p}, nil
	}
	before, err := read()
	if err == nil {
		load()
		var after usage
		if after, err = read(); err == nil {
			return usage{after.target.since(before.target), after.client.since(before.client), after.proxy.since(before.proxy)}, true
		}
	} else {
		load()
	}
	m.failed = err
	r.note("%s: /metrics could not be read, so the cost figures stop here: %v", id, err)
	return usage{}, false
}

// readCost is what one path's reads cost, summed over its loads.
type readCost struct {
	reads int64
	usage
}

// add adds one load's reads and what they cost.
func (c *readCost) add(reads int64, u usage) {
	if c.target == nil {
		c.target, c.client = requestCounts{}, requestCounts{}
	}
	c.reads += reads
	c.target.add(u.target)
	c.client.add(u.client)
	c.proxy = c.proxy.add(u.proxy)
}

// addCostRows records per 100 reads on each crproxy path (the target's
// column stays empty): the target's requests (every request but the
// churner's), of which reads and writes of the proxied resource (a
// consistency mechanism's GETs and selection lists), and the client cluster's
// SubjectAccessReviews.
func addCostRows(r *report, base row, costs [numPaths]readCost) {
	per100 := func(f func(readCost) float64) figures {
		out := unmeasured()
		for _, i := range []int{pathCrproxy, pathViaClient} {
			if costs[i].reads > 0 && costs[i].target != nil {
				out[i] = 100 * f(costs[i]) / float64(costs[i].reads)
			}
		}
		return out
	}
	add := func(metric, unit string, f func(readCost) float64) {
		rw := base
		rw.Metric, rw.Unit = metric, unit
		r.add(rw, per100(f))
	}
	add("target requests per 100 reads", "req", func(c readCost) float64 { return c.target.total() })
	add("target reads of myresources per 100 reads", "req", func(c readCost) float64 { return c.target.reads(proxiedResource) })
	add("target writes to myresources per 100 reads", "req", func(c readCost) float64 { return c.target.writes(proxiedResource) })
	add("client-cluster SubjectAccessReviews per 100 reads", "req", func(c readCost) float64 { return c.client[subjectAccessReviews] })
	rw := base
	rw.Metric, rw.Unit = "mean time in crproxy's handler", "ms"
	mean := unmeasured()
	for _, i := range []int{pathCrproxy, pathViaClient} {
		if p := costs[i].proxy; p.requests > 0 {
			mean[i] = 1000 * p.seconds / p.requests
		}
	}
	r.add(rw, mean)
}

// handlerTime is crproxy's crproxy_request_duration_seconds for the
// proxied resource, every verb and status code: the seconds it spent
// answering and the requests it answered.
type handlerTime struct {
	seconds, requests float64
}

// since is h minus an earlier reading.
func (h handlerTime) since(before handlerTime) handlerTime {
	return handlerTime{h.seconds - before.seconds, h.requests - before.requests}
}

// add is h plus d.
func (h handlerTime) add(d handlerTime) handlerTime {
	return handlerTime{h.seconds + d.seconds, h.requests + d.requests}
}

// handlerTimes reads crproxy's handlerTime from its /metrics.
func handlerTimes(ctx context.Context, hc *http.Client, cfg *rest.Config) (handlerTime, error) {
	body, err := readMetrics(ctx, hc, cfg)
	if err != nil {
		return handlerTime{}, err
	}
	return parseHandlerTimes(body)
}

// parseHandlerTimes sums crproxy_request_duration_seconds_sum and _count
// of myresources.
func parseHandlerTimes(body []byte) (handlerTime, error) {
	var h handlerTime
	for name, into := range map[string]*float64{"crproxy_request_duration_seconds_sum": &h.seconds, "crproxy_request_duration_seconds_count": &h.requests} {
		if err := eachSample(body, name, func(labels map[string]string, v float64) {
			if labels["resource"] == "myresources.example.com" {
				*into += v
			}
		}); err != nil {
			return handlerTime{}, err
		}
	}
	return h, nil
}

// readMetrics reads a server's /metrics.
func readMetrics(ctx context.Context, hc *http.Client, cfg *rest.Config) ([]byte, error) {
	return getBody(ctx, hc, cfg.Host+"/metrics", nil)
}

// eachSample calls f with the labels and value of every sample of the
// metric name in a Prometheus text exposition.
func eachSample(body []byte, name string, f func(labels map[string]string, v float64)) error {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var labels map[string]string
		var value string
		if line, ok := strings.CutPrefix(sc.Text(), name+"{"); ok {
			if labels, value, ok = cutLabels(line); !ok {
				return fmt.Errorf("%s: cannot parse %q", name, sc.Text())
			}
		} else if value, ok = strings.CutPrefix(sc.Text(), name+" "); ok {
			labels = map[string]string{} // a metric without labels
		} else {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value + " x")[0], 64)
		if err != nil {
			return fmt.Errorf("%s: %q: %w", name, sc.Text(), err)
		}
		f(labels, v)
	}
	return sc.Err()
}

// targetRequests reads a kube-apiserver's apiserver_request_total from its
// /metrics (as its admin).
func targetRequests(ctx context.Context, hc *http.Client, cfg *rest.Config) (requestCounts, error) {
	body, err := readMetrics(ctx, hc, cfg)
	if err != nil {
		return nil, err
	}
	return parseRequestCounts(body)
}

// parseRequestCounts sums the apiserver_request_total samples of a
// Prometheus text exposition by verb and resource, leaving out configmaps
// (the churner's writes) and GET /metrics (the benchmark's readings: each
// reading counts the one before).
func parseRequestCounts(body []byte) (requestCounts, error) {
	counts := requestCounts{}
	err := eachSample(body, "apiserver_request_total", func(labels map[string]string, v float64) {
		if labels["resource"] == "configmaps" && labels["group"] == "" {
			return
		}
		what := labels["resource"]
		if g := labels["group"]; g != "" {
			what = g + "/" + what
		}
		if sub := labels["subresource"]; sub != "" {
			what = strings.TrimPrefix(what+"/"+sub, "/")
		}
		key := labels["verb"] + " " + what
		if key == "GET /metrics" {
			return
		}
		counts[key] += v
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// cutLabels parses `k="v",...} rest` into the labels and rest.
func cutLabels(s string) (map[string]string, string, bool) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, ",")
		if rest, ok := strings.CutPrefix(s, "}"); ok {
			return labels, strings.TrimSpace(rest), true
		}
		k, rest, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return nil, "", false
		}
		// The value's end is the first unescaped quote.
		end := 1
		for ; end < len(rest) && rest[end] != '"'; end++ {
			if rest[end] == '\\' {
				end++
			}
		}
		if end >= len(rest) {
			return nil, "", false
		}
		v, err := strconv.Unquote(rest[:end+1])
		if err != nil {
			return nil, "", false
		}
		labels[k] = v
		s = rest[end+1:]
	}
}

// since is c minus an earlier reading.
func (c requestCounts) since(before requestCounts) requestCounts {
	d := requestCounts{}
	for k, v := range c {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

// add adds d to c.
func (c requestCounts) add(d requestCounts) {
	for k, v := range d {
		c[k] += v
	}
}

// total is the sum of the counts.
func (c requestCounts) total() float64 {
	var n float64
	for _, v := range c {
		n += v
	}
	return n
}

// of sums the counts of resource (proxiedResource, say) whose verb passes
// verb.
func (c requestCounts) of(resource string, verb func(string) bool) float64 {
	var n float64
	for k, v := range c {
		if vb, what, _ := strings.Cut(k, " "); what == resource && verb(vb) {
			n += v
		}
	}
	return n
}

// writes is the count of requests that changed resource.
func (c requestCounts) writes(resource string) float64 {
	return c.of(resource, func(v string) bool { return mutatingVerbs[v] })
}

// reads is the count of requests that read resource (GET, LIST, WATCH).
func (c requestCounts) reads(resource string) float64 {
	return c.of(resource, func(v string) bool { return !mutatingVerbs[v] })
}

// String lists the counts, most first.
func (c requestCounts) String() string { return c.format(thousands) }

// format lists the counts, most first, each written by value.
func (c requestCounts) format(value func(float64) string) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %s", k, value(c[k]))
	}
	return strings.Join(parts, ", ")
}
