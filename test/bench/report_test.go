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
// through the reference reverse proxy (pathPlainHop), Replay the reference
// server answering from memory (pathReplay); a nil value was not measured
// on that path. Ratio is Crproxy/Target. BarRatio, when set, is the bar
// for Ratio; Bar says the bar in words and Met whether this run met it.
// Floor, on the rows whose bar has one (floorOf), names the reference
// that is the least any server in crproxy's place can cost there,
// FloorRatio is its ratio, and FloorMet says whether it met the same bar:
// whether the bar leaves room for crproxy at all on this machine.
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
	Replay         *float64 `json:"replay,omitempty"`
	ReplayRatio    *float64 `json:"replayRatio,omitempty"`
	BarRatio       *float64 `json:"barRatio,omitempty"`
	Bar            string   `json:"bar,omitempty"`
	Met            *bool    `json:"met,omitempty"`
	Floor          string   `json:"floor,omitempty"`
	FloorRatio     *float64 `json:"floorRatio,omitempty"`
	FloorMet       *bool    `json:"floorMet,omitempty"`
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
	rw.Target, rw.Crproxy, rw.ViaClient = set(f[pathTarget]), set(f[pathCrproxy]), set(f[pathViaClient])
	rw.PlainHop, rw.Replay = set(f[pathPlainHop]), set(f[pathReplay])
	if rw.Target != nil && *rw.Target > 0 {
		ratio := func(v *float64) *float64 {
			if v == nil {
				return nil
			}
			return ptr(*v / *rw.Target)
		}
		rw.Ratio, rw.ViaClientRatio = ratio(rw.Crproxy), ratio(rw.ViaClient)
		rw.PlainHopRatio, rw.ReplayRatio = ratio(rw.PlainHop), ratio(rw.Replay)
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

// floorOf names the reference path that is rw's floor, and sets whether
// it met rw's bar too. The plain hop is the floor of requests crproxy must
// send to the target one by one (writes, consistent GETs of one client);
// the replay, of reads answered from memory (lists). A bar its floor
// misses is below what any server in crproxy's place costs on this
// machine.
func floorOf(rw row, f figures, floor int) row {
	if rw.meets != nil {
		rw.Floor, rw.FloorRatio = referenceNames[floor], ratioOf(f, floor)
		rw.FloorMet = barMet(f, floor, rw.meets)
	}
	return rw
}

// referenceNames are the reference paths' short names, as the tables give
// a floor.
var referenceNames = map[int]string{pathPlainHop: "plain hop", pathReplay: "replay"}

// ratioOf is path i's figure over the target's (nil: not measured).
func ratioOf(f figures, i int) *float64 {
	if f[pathTarget] > 0 && !math.IsNaN(f[i]) {
		return ptr(f[i] / f[pathTarget])
	}
	return nil
}

// barMet is whether path i met a ratio bar (nil: not measured).
func barMet(f figures, i int, meets func(ratio float64) bool) *bool {
	if r := ratioOf(f, i); r != nil {
		return ptr(meets(*r))
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
	fmt.Fprintln(w, "| | case | figure | target kube-apiserver | crproxy straight | ratio | through client kube-apiserver | ratio | plain hop | ratio | replay | ratio | bar | met | floor met |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
	rows := append([]row(nil), r.Rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	for _, rw := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rw.ID, rw.Case, rw.Metric,
			value(rw.Target, rw.Unit), value(rw.Crproxy, rw.Unit), ratio(rw.Ratio), value(rw.ViaClient, rw.Unit), ratio(rw.ViaClientRatio),
			value(rw.PlainHop, rw.Unit), ratio(rw.PlainHopRatio), value(rw.Replay, rw.Unit), ratio(rw.ReplayRatio), rw.Bar, met(rw.Met), rw.floorVerdict())
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\n- %s", n)
	}
	fmt.Fprintln(w)
	printConditions(w, rows)
	printBars(w, rows)
}

// floorVerdict is the "floor met" cell: whether the floor met the bar,
// and which reference it is.
func (rw row) floorVerdict() string {
	if rw.FloorMet == nil {
		return ""
	}
	return met(rw.FloorMet) + " (" + rw.Floor + ")"
}

// floorCell is a "floor ratio" cell: the floor's ratio and its name.
func (rw row) floorCell() string {
	if rw.FloorRatio != nil {
		return ratio(rw.FloorRatio) + " (" + rw.Floor + ")"
	}
	return ""
}

// printConditions writes the rows measured quiet and busy once more, side
// by side: crproxy straight against the target in each condition, with
// each condition's bar and, where the bar has one, its floor's ratio.
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
	fmt.Fprintln(w, "| | case | figure | target, quiet | crproxy, quiet | ratio | floor ratio | bar | met | target, busy | crproxy, busy | ratio | floor ratio | bar | met |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
	for _, q := range rows {
		b, ok := busy[key{q.ID, q.base, q.Metric}]
		if q.Condition != "quiet" || !ok {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", q.ID, q.base, q.Metric,
			value(q.Target, q.Unit), value(q.Crproxy, q.Unit), ratio(q.Ratio), q.floorCell(), q.Bar, met(q.Met),
			value(b.Target, b.Unit), value(b.Crproxy, b.Unit), ratio(b.Ratio), b.floorCell(), b.Bar, met(b.Met))
	}
}

// printBars writes how many bars the run met, and the ones it missed, with
// what their floor measured (floorOf): a bar the floor misses too is below
// what any server in crproxy's place costs on this machine.
func printBars(w io.Writer, rows []row) {
	var n, missed, floorMissed int
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
			if rw.FloorRatio != nil {
				fmt.Fprintf(&b, "; %s %.2fx", rw.Floor, *rw.FloorRatio)
			}
			b.WriteString(")")
		}
		if rw.FloorMet != nil && !*rw.FloorMet {
			floorMissed++
			fmt.Fprintf(&b, ", missed by the %s too", rw.Floor)
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nBars: %d of %d met", n-missed, n)
	if floorMissed > 0 {
		fmt.Fprintf(w, "; %d of the %d missed are missed by their floor too", floorMissed, missed)
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
