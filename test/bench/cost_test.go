package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
)

// requestCounts is the target's apiserver_request_total summed by verb and
// resource ("LIST example.com/myresources", "GET /readyz" for a path
// without a resource), without the churner's ConfigMap requests.
type requestCounts map[string]float64

// targetRequests reads the target's apiserver_request_total from its
// /metrics (as its admin).
func targetRequests(ctx context.Context, hc *http.Client, cfg *rest.Config) (requestCounts, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/metrics", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("target /metrics: %d %s", resp.StatusCode, body)
	}
	return parseRequestCounts(body)
}

// parseRequestCounts sums the apiserver_request_total samples of a
// Prometheus text exposition by verb and resource, leaving out configmaps
// (the churner's writes).
func parseRequestCounts(body []byte) (requestCounts, error) {
	const name = "apiserver_request_total{"
	counts := requestCounts{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), name)
		if !ok {
			continue
		}
		labels, value, ok := cutLabels(line)
		if !ok {
			return nil, fmt.Errorf("apiserver_request_total: cannot parse %q", sc.Text())
		}
		v, err := strconv.ParseFloat(strings.Fields(value + " x")[0], 64)
		if err != nil {
			return nil, fmt.Errorf("apiserver_request_total: %q: %w", sc.Text(), err)
		}
		if labels["resource"] == "configmaps" && labels["group"] == "" {
			continue
		}
		what := labels["resource"]
		if g := labels["group"]; g != "" {
			what = g + "/" + what
		}
		if sub := labels["subresource"]; sub != "" {
			what = strings.TrimPrefix(what+"/"+sub, "/")
		}
		counts[labels["verb"]+" "+what] += v
	}
	return counts, sc.Err()
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

// String lists the counts, most first.
func (c requestCounts) String() string {
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
		parts[i] = fmt.Sprintf("%s %s", k, thousands(c[k]))
	}
	return strings.Join(parts, ", ")
}
