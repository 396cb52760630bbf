package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// report collects every figure of one run: one table, printed at the end
// and written as JSON for docs/benchmarks.md and hack/tools/benchplot.
type report struct {
	mu      sync.Mutex
	Started time.Time `json:"started"`
	Objects int       `json:"objects"`
	// ObjectBytes is the mean size of one object's JSON as crproxy serves it.
	ObjectBytes int      `json:"objectBytes"`
	Machine     machine  `json:"machine"`
	Rows        []row    `json:"rows"`
	Series      []series `json:"series"`
	Notes       []string `json:"notes,omitempty"`
}

// machine is where and with what the run happened.
type machine struct {
	Cores         int    `json:"cores"`
	MemoryBytes   int64  `json:"memoryBytes"`
	Go            string `json:"go"`
	KubeAPIServer string `json:"kubeAPIServer"`
	Etcd          string `json:"etcd"`
	Crproxy       string `json:"crproxy"`
}

// row is one figure on the paths. Target is the target kube-apiserver
// straight, Crproxy is crproxy straight (a client certificate, no
// aggregator), ViaClient is through the client kube-apiserver, PlainHop
// through the reference reverse proxy (pathPlainHop); a nil value was not
// measured on that path. Ratio is Crproxy/Target. BarRatio, when set, is
// the bar for Ratio; Bar says the bar in words and Met whether this run
// met it; PlainHopMet, on the rows of requests crproxy must send to the
// target (floorOf), whether the plain hop met the same bar: whether one
// hop leaves room for it.
type row struct {
	ID             string   `json:"id"`
	Case           string   `json:"case"`
	Metric         string   `json:"metric"`
	Unit           string   `json:"unit"`
	Target         *float64 `json:"target"`
	Crproxy        *float64 `json:"crproxy"`
	ViaClient      *float64 `json:"viaClient"`
	PlainHop       *float64 `json:"plainHop,omitempty"`
	Ratio          *float64 `json:"ratio"`
	ViaClientRatio *float64 `json:"viaClientRatio"`
	PlainHopRatio  *float64 `json:"plainHopRatio,omitempty"`
	BarRatio       *float64 `json:"barRatio,omitempty"`
	Bar            string   `json:"bar,omitempty"`
	Met            *bool    `json:"met,omitempty"`
	PlainHopMet    *bool    `json:"plainHopMet,omitempty"`
	// meets is the bar as a test of a ratio (barAtMost, barAtLeast).
	meets func(ratio float64) bool
	// Condition is "quiet" or "busy" for a benchmark measured in both
	// (condition.row), "" for the others.
	Condition string `json:"condition,omitempty"`
	// base is Case without the condition's suffix: a quiet row and its
	// busy twin share it.
	base string
}

// series is one line of a plot: a figure against a parameter.
type series struct {
	Group  string    `json:"group"`
	Path   string    `json:"path"`
	XLabel string    `json:"xLabel"`
	YLabel string    `json:"yLabel"`
	LogX   bool      `json:"logX"`
	X      []float64 `json:"x"`
	Y      []float64 `json:"y"`
}

// figures is one measurement on the paths, in benchEnv.paths order (a
// missing path is NaN).
type figures [numPaths]float64

// unmeasured is figures with no path measured, to fill in.
func unmeasured() figures {
	var f figures
	for i := range f {
		f[i] = math.NaN()
	}
	return f
}

// targetAndCrproxy is figures of the target and crproxy straight only.
func targetAndCrproxy(target, crproxy float64) figures {
	f := unmeasured()
	f[pathTarget], f[pathCrproxy] = target, crproxy
	return f
}

func ptr[T any](v T) *T { return &v }

// add records a row; ratios are computed from the figures.
func (r *report) add(rw row, f figures) {
	set := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return ptr(v)
	}
	rw.Target, rw.Crproxy, rw.ViaClient, rw.PlainHop = set(f[pathTarget]), set(f[pathCrproxy]), set(f[pathViaClient]), set(f[pathPlainHop])
	if rw.Target != nil && *rw.Target > 0 {
		ratio := func(v *float64) *float64 {
			if v == nil {
				return nil
			}
			return ptr(*v / *rw.Target)
		}
		rw.Ratio, rw.ViaClientRatio, rw.PlainHopRatio = ratio(rw.Crproxy), ratio(rw.ViaClient), ratio(rw.PlainHop)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Rows = append(r.Rows, rw)
}

// addSeries records a line for the plots.
func (r *report) addSeries(s series) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Series = append(r.Series, s)
}

// note records a remark printed under the table.
func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// barAtMost sets a ratio bar (lower is better) and whether it was met.
func barAtMost(rw row, limit float64, f figures) row {
	rw.BarRatio = ptr(limit)
	if rw.Bar == "" {
		rw.Bar = fmt.Sprintf("≤ %gx target", limit)
	}
	return withBar(rw, f, func(r float64) bool { return r <= limit })
}

// withBar sets whether crproxy straight met a ratio bar, and keeps the
// bar for floorOf.
func withBar(rw row, f figures, meets func(ratio float64) bool) row {
	rw.meets = meets
	rw.Met = barMet(f, pathCrproxy, meets)
	return rw
}

// floorOf sets whether the plain hop met rw's bar too, for requests that
// crproxy must send to the target one by one (writes, consistent GETs of
// one client): there the plain hop is the least any proxy can cost, and a
// bar it misses is below one hop on this machine.
func floorOf(rw row, f figures) row {
	if rw.meets != nil {
		rw.PlainHopMet = barMet(f, pathPlainHop, rw.meets)
	}
	return rw
}

// barMet is whether path i met a ratio bar (nil: not measured).
func barMet(f figures, i int, meets func(ratio float64) bool) *bool {
	if f[pathTarget] > 0 && !math.IsNaN(f[i]) {
		return ptr(meets(f[i] / f[pathTarget]))
	}
	return nil
}

// barAbsolute sets a bar on crproxy's own figure.
func barAbsolute(rw row, text string, met bool) row {
	rw.Bar, rw.Met = text, ptr(met)
	return rw
}

// printMarkdown writes the table as Markdown, so it can be pasted into
// docs/benchmarks.md as it is.
func (r *report) printMarkdown(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.Machine
	fmt.Fprintf(w, "\ncrproxy %s, kube-apiserver %s, etcd %s, %s; %d cores, %.1f GiB memory; %d objects of %d bytes of JSON; %s\n\n",
		m.Crproxy, m.KubeAPIServer, m.Etcd, m.Go, m.Cores, float64(m.MemoryBytes)/(1<<30), r.Objects, r.ObjectBytes, r.Started.UTC().Format(time.RFC3339))
	fmt.Fprintln(w, "| | case | figure | target kube-apiserver | crproxy straight | ratio | through client kube-apiserver | ratio | plain hop | ratio | bar | met | plain hop met |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
	rows := append([]row(nil), r.Rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	for _, rw := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rw.ID, rw.Case, rw.Metric,
			value(rw.Target, rw.Unit), value(rw.Crproxy, rw.Unit), ratio(rw.Ratio), value(rw.ViaClient, rw.Unit), ratio(rw.ViaClientRatio),
			value(rw.PlainHop, rw.Unit), ratio(rw.PlainHopRatio), rw.Bar, met(rw.Met), met(rw.PlainHopMet))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\n- %s", n)
	}
	fmt.Fprintln(w)
	printConditions(w, rows)
	printBars(w, rows)
}

// printConditions writes the rows measured quiet and busy once more, side
// by side: crproxy straight against the target in each condition, with
// each condition's bar.
func printConditions(w io.Writer, rows []row) {
	type key struct{ id, base, metric string }
	busy := map[key]row{}
	for _, rw := range rows {
		if rw.Condition == "busy" {
			busy[key{rw.ID, rw.base, rw.Metric}] = rw
		}
	}
	if len(busy) == 0 {
		return
	}
	fmt.Fprintln(w, "\nQuiet and busy target, crproxy straight:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | case | figure | target, quiet | crproxy, quiet | ratio | plain hop ratio | bar | met | target, busy | crproxy, busy | ratio | plain hop ratio | bar | met |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
	for _, q := range rows {
		b, ok := busy[key{q.ID, q.base, q.Metric}]
		if q.Condition != "quiet" || !ok {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", q.ID, q.base, q.Metric,
			value(q.Target, q.Unit), value(q.Crproxy, q.Unit), ratio(q.Ratio), ratio(q.PlainHopRatio), q.Bar, met(q.Met),
			value(b.Target, b.Unit), value(b.Crproxy, b.Unit), ratio(b.Ratio), ratio(b.PlainHopRatio), b.Bar, met(b.Met))
	}
}

// printBars writes how many bars the run met, and the ones it missed, with
// what the plain hop measured beside those it is a floor of (floorOf): a
// bar the plain hop misses too is below the cost of one hop on this
// machine.
func printBars(w io.Writer, rows []row) {
	var n, missed, hopMissed int
	var b strings.Builder
	for _, rw := range rows {
		if rw.Met == nil {
			continue
		}
		n++
		if *rw.Met {
			continue
		}
		missed++
		fmt.Fprintf(&b, "\n- %s %s, %s: %s", rw.ID, rw.Case, rw.Metric, rw.Bar)
		if rw.Ratio != nil {
			fmt.Fprintf(&b, " (%.2fx", *rw.Ratio)
			if rw.PlainHopMet != nil && rw.PlainHopRatio != nil {
				fmt.Fprintf(&b, "; plain hop %.2fx", *rw.PlainHopRatio)
			}
			b.WriteString(")")
		}
		if rw.PlainHopMet != nil && !*rw.PlainHopMet {
			hopMissed++
			b.WriteString(", missed by the plain hop too")
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nBars: %d of %d met", n-missed, n)
	if hopMissed > 0 {
		fmt.Fprintf(w, "; %d of the %d missed are missed by the plain hop too", hopMissed, missed)
	}
	fmt.Fprintf(w, ".%s\n", b.String())
}

// met is a row's verdict as the tables print it.
func met(m *bool) string {
	if m == nil {
		return ""
	}
	return map[bool]string{true: "yes", false: "**no**"}[*m]
}

func value(v *float64, unit string) string {
	switch {
	case v == nil:
		return ""
	case *v >= 100:
		return fmt.Sprintf("%s %s", thousands(*v), unit)
	case *v >= 10:
		return fmt.Sprintf("%.1f %s", *v, unit)
	default:
		return fmt.Sprintf("%.2f %s", *v, unit)
	}
}

// thousands formats v without decimals and with thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%.2f", *v)
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// percentile is the p-th percentile (0–100) of d, by nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
