// Command benchplot draws the JSON that crproxy's benchmark writes (make
// bench) as PNG plots for the docs:
//
//   - ratios.png: one horizontal bar per row that has a ratio, crproxy's
//     figure over the target kube-apiserver's on a log axis, with the row's
//     bar where it has one as a ratio;
//   - series-<group>.png: one line plot per series group (for example GET
//     throughput against concurrent clients), one line per path.
//
// It is a Go module of its own so that crproxy's go.mod does not gain the
// plotting dependencies. go -C changes into the tool's folder before it
// runs, so give it absolute paths; from the repository root:
//
//	go -C hack/tools/benchplot run . -in "$PWD/bench.json" -out "$PWD/docs/benchmarks"
//
// (in a Makefile, $(CURDIR) in place of $PWD), or with paths relative to the
// tool's folder:
//
//	cd hack/tools/benchplot && go run . -in ../../../bench.json -out ../../../docs/benchmarks
//
// Null or absent numbers are skipped; an input with nothing to plot writes
// nothing and exits 0; input that is not valid JSON exits 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Report is the benchmark's JSON file. Numbers are pointers because the
// benchmark writes null for a figure it could not take.
type Report struct {
	// Started is when the benchmark run began (RFC 3339).
	Started string `json:"started"`
	// Objects is how many objects the list benchmarks loaded.
	Objects *float64 `json:"objects"`
	// Machine describes where the figures were taken.
	Machine Machine `json:"machine"`
	// Rows are the single figures, each compared with the target's.
	Rows []Row `json:"rows"`
	// Series are the curves, such as throughput against clients.
	Series []Series `json:"series"`
}

// Machine is the hardware and the versions behind a run, printed under each
// plot because a ratio means little without them.
type Machine struct {
	Cores         *float64 `json:"cores"`
	MemoryBytes   *float64 `json:"memoryBytes"`
	Go            string   `json:"go"`
	KubeAPIServer string   `json:"kubeAPIServer"`
	Etcd          string   `json:"etcd"`
	Crproxy       string   `json:"crproxy"`
}

// Row is one figure of crproxy beside the target kube-apiserver's.
type Row struct {
	ID     string `json:"id"`
	Case   string `json:"case"`
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	// Target, Crproxy and ViaClient are the raw figures in Unit.
	Target    *float64 `json:"target"`
	Crproxy   *float64 `json:"crproxy"`
	ViaClient *float64 `json:"viaClient"`
	// Ratio is Crproxy/Target, and ViaClientRatio ViaClient/Target.
	Ratio          *float64 `json:"ratio"`
	ViaClientRatio *float64 `json:"viaClientRatio"`
	// BarRatio is the row's bar as a ratio, where the bar is one.
	BarRatio *float64 `json:"barRatio"`
	// Bar is the bar in words and Met whether the run met it.
	Bar string `json:"bar"`
	Met *bool  `json:"met"`
}

// Series is one path's curve; the series of one Group share a plot.
type Series struct {
	Group  string `json:"group"`
	Path   string `json:"path"`
	XLabel string `json:"xLabel"`
	YLabel string `json:"yLabel"`
	// LogX asks for a log x axis, for sweeps such as 1, 16, 64 clients.
	LogX bool       `json:"logX"`
	X    []*float64 `json:"x"`
	Y    []*float64 `json:"y"`
}

func main() {
	in := flag.String("in", "", "benchmark JSON written by make bench (required)")
	out := flag.String("out", "", "folder to write the PNG files into (required; created if missing)")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: benchplot -in BENCH.json -out DIR")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}

// run reads the benchmark JSON at in and writes its plots into the folder
// out, saying on stdout what it wrote.
func run(in, out string) error {
	rep, err := load(in)
	if err != nil {
		return err
	}
	rows := plottableRows(rep.Rows)
	groups := seriesGroups(rep.Series)
	if len(rows) == 0 && len(groups) == 0 {
		fmt.Printf("benchplot: %s has no row with a ratio and no series with points; nothing written\n", in)
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	note := machineNote(rep)
	var written []string
	if len(rows) > 0 {
		path := filepath.Join(out, "ratios.png")
		if err := plotRatios(rows, note, path); err != nil {
			return err
		}
		written = append(written, path)
	}
	used := map[string]bool{}
	styles := paintPaths(rep.Series)
	for _, g := range groups {
		path := filepath.Join(out, "series-"+uniqueName(sanitize(g.name), used)+".png")
		if err := plotSeries(g, styles, note, path); err != nil {
			return err
		}
		written = append(written, path)
	}
	for _, p := range written {
		fmt.Println("wrote", p)
	}
	return nil
}

// load reads and decodes the report. A file holding only white space counts
// as empty rather than bad, so that a benchmark run that wrote nothing does
// not fail the docs step after it.
func load(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	if len(bytes.TrimSpace(data)) == 0 {
		return rep, nil
	}
	if err := json.Unmarshal(data, rep); err != nil {
		return nil, jsonError(path, data, err)
	}
	return rep, nil
}

// paintPaths gives every path a colour and a marker for all plots, so that
// a path looks the same in each; the paths the bar chart also shows get its
// colours.
func paintPaths(all []Series) map[string]pathStyle {
	styles := map[string]pathStyle{
		"target kube-apiserver":         {targetColor, plotutil.Shape(0)},
		"crproxy straight":              {straightColor, plotutil.Shape(1)},
		"through client kube-apiserver": {viaColor, plotutil.Shape(2)},
	}
	n := 0
	for _, s := range all {
		if _, ok := styles[s.Path]; !ok {
			styles[s.Path] = pathStyle{otherColors[n%len(otherColors)], plotutil.Shape(3 + n)}
			n++
		}
	}
	return styles
}

// pathStyle is how one path is drawn in the series plots.
type pathStyle struct {
	color color.Color
	shape draw.GlyphDrawer
}

// jsonError says where in the file decoding failed, since encoding/json
// gives only a byte offset.
func jsonError(path string, data []byte, err error) error {
	off := int64(-1)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 {
		return fmt.Errorf("%s is not valid benchmark JSON: %w", path, err)
	}
	// Offset counts the bytes read up to and including the offending one.
	off = min(max(off, 1), int64(len(data)))
	line := 1 + bytes.Count(data[:off-1], []byte("\n"))
	col := off - 1 - int64(bytes.LastIndexByte(data[:off-1], '\n'))
	return fmt.Errorf("%s is not valid benchmark JSON (line %d, column %d): %w", path, line, col, err)
}

// plottableRows keeps the rows with a ratio a log axis can show.
func plottableRows(rows []Row) []Row {
	var keep []Row
	for _, r := range rows {
		if r.Ratio == nil {
			continue
		}
		if !positive(r.Ratio) {
			fmt.Fprintf(os.Stderr, "benchplot: skipping %s: ratio %g cannot go on a log axis\n", rowLabel(r), *r.Ratio)
			continue
		}
		keep = append(keep, r)
	}
	return keep
}

// positive reports whether v is there and a log axis can show it.
func positive(v *float64) bool {
	return v != nil && *v > 0 && !math.IsInf(*v, 0)
}

// maxLabel bounds a row's label, so one long label cannot squeeze the plot.
const maxLabel = 60

func rowLabel(r Row) string {
	label := strings.TrimSpace(r.ID + " " + r.Case + " " + r.Metric)
	if runes := []rune(label); len(runes) > maxLabel {
		label = string(runes[:maxLabel-1]) + "…"
	}
	return label
}

// machineNote is the line under each plot that says where its figures come
// from.
func machineNote(rep *Report) string {
	var parts []string
	m := rep.Machine
	if m.Cores != nil {
		parts = append(parts, fmt.Sprintf("%g cores", *m.Cores))
	}
	if m.MemoryBytes != nil {
		parts = append(parts, fmt.Sprintf("%.0f GiB", *m.MemoryBytes/(1<<30)))
	}
	for _, v := range []struct{ name, version string }{
		{"", m.Go}, {"kube-apiserver ", m.KubeAPIServer}, {"etcd ", m.Etcd}, {"crproxy ", m.Crproxy},
	} {
		if v.version != "" {
			parts = append(parts, v.name+v.version)
		}
	}
	if rep.Objects != nil {
		parts = append(parts, fmt.Sprintf("%g objects", *rep.Objects))
	}
	if rep.Started != "" {
		started := rep.Started
		// The benchmark writes nanoseconds; minutes are enough here.
		if t, err := time.Parse(time.RFC3339, started); err == nil {
			started = t.UTC().Format("2006-01-02 15:04 MST")
		}
		parts = append(parts, "run "+started)
	}
	return strings.Join(parts, " · ")
}

// Colours: blue and orange stay apart for most colour-blind readers.
var (
	straightColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	viaColor      = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	// otherColors are for paths other than the three the benchmark has.
	otherColors = []color.Color{
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
		color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
		color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
		color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	}
	barColor    = color.RGBA{A: 0xff}
	targetColor = color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
	noteColor   = color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
)

const (
	// rowPx is the height of one row of ratios.png and ratioChromePx what
	// its title, x axis, legend and note take besides.
	rowPx, ratioChromePx = 28, 120
	ratioWidthPx         = 900
	seriesWidthPx        = 800
	seriesHeightPx       = 500
)

// ratiosSize is the pixel size of ratios.png for n rows.
func ratiosSize(n int) (w, h int) { return ratioWidthPx, ratioChromePx + rowPx*n }

// plotRatios draws one bar per row, first row at the top, as a ratio to the
// target on a log axis, so that 0.1x and 10x lie as far from 1 as each other.
func plotRatios(rows []Row, note, path string) (err error) {
	defer recoverDraw(path, &err)
	n := len(rows)
	p := plot.New()
	p.Title.Text = "crproxy / target kube-apiserver"
	p.X.Label.Text = "ratio to the target (log scale)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}

	labels := make([]string, n)
	var straight, via hbars
	straight.color, via.color = straightColor, viaColor
	marks := barMarks{color: barColor}
	values := []float64{1}
	for i, r := range rows {
		y := float64(n - 1 - i) // first row at the top
		labels[n-1-i] = rowLabel(r)
		values = append(values, *r.Ratio)
		if positive(r.ViaClientRatio) {
			// Two bars share the row: crproxy's above the client's.
			straight.add(y+0.19, 0.17, *r.Ratio)
			via.add(y-0.19, 0.17, *r.ViaClientRatio)
			values = append(values, *r.ViaClientRatio)
		} else {
			straight.add(y, 0.34, *r.Ratio)
		}
		if positive(r.BarRatio) {
			marks.add(y, 0.44, *r.BarRatio)
			values = append(values, *r.BarRatio)
		}
	}
	p.NominalY(labels...)
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil // the rows are the horizontal structure
	p.Add(grid, &straight, &via, &marks, &refLine{at: 1, label: "target", style: p.Legend.TextStyle})
	p.X.Min, p.X.Max = logRange(values)
	// The row above the first one is left free for the "target" label.
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5+0.8

	legend := []legendEntry{{"crproxy straight", []plot.Thumbnailer{&straight}}}
	if len(via.bars) > 0 {
		legend = append(legend, legendEntry{"through client kube-apiserver", []plot.Thumbnailer{&via}})
	}
	if len(marks.bars) > 0 {
		legend = append(legend, legendEntry{"bar (as a ratio)", []plot.Thumbnailer{&marks}})
	}
	w, h := ratiosSize(n)
	return save(p, legend, note, w, h, path)
}

// logRange is the axis range: whole decades around the values and never
// less than 0.1 .. 10, so that the target line at 1 never sits on an edge.
// A value within a factor 1.5 of an edge moves that edge a decade out, so
// that a bar of exactly 0.1 is not drawn on the axis itself.
func logRange(values []float64) (lo, hi float64) {
	lo, hi = 0.1, 10
	for _, v := range values {
		lo = math.Min(lo, math.Pow(10, math.Floor(math.Log10(v/1.5))))
		hi = math.Max(hi, math.Pow(10, math.Ceil(math.Log10(v*1.5))))
	}
	return lo, hi
}

// logTicks labels every decade and, when the axis spans few decades, 2 and
// 5 too; plot.LogTicks labels decades only, which leaves 0.1 .. 10 with
// three numbers.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	labelled := map[int]bool{1: true}
	if hi/lo <= 1e4 {
		labelled[2], labelled[5] = true, true
	}
	var ticks []plot.Tick
	for dec := math.Pow(10, math.Floor(math.Log10(lo))); dec <= hi; dec *= 10 {
		for i := 1; i < 10; i++ {
			v := dec * float64(i)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if labelled[i] {
				t.Label = formatNum(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// formatNum prints a tick value without float noise (0.30000000000000004)
// and without exponents for the sizes benchmarks produce.
func formatNum(v float64) string {
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// hbars draws horizontal bars from the left edge of the plot to their
// value. plotter.BarChart starts its bars at 0, which a log axis cannot
// show.
type hbars struct {
	color color.Color
	bars  []span
}

// span is one bar or mark: value v at row position y, reaching half rows up
// and down.
type span struct{ y, half, v float64 }

func (b *hbars) add(y, half, v float64) { b.bars = append(b.bars, span{y, half, v}) }

// Plot implements plot.Plotter.
func (b *hbars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	c.SetColor(b.color)
	for _, s := range b.bars {
		r := vg.Rectangle{
			Min: vg.Point{X: c.Min.X, Y: trY(s.y - s.half)},
			Max: vg.Point{X: trX(s.v), Y: trY(s.y + s.half)},
		}
		c.Fill(r.Path())
	}
}

// Thumbnail implements plot.Thumbnailer.
func (b *hbars) Thumbnail(c *draw.Canvas) {
	c.SetColor(b.color)
	c.Fill(c.Rectangle.Path())
}

// barMarks draws each row's bar as a short thick vertical line across the
// row, so the end of a bar is seen to fall short of it or pass it.
type barMarks struct {
	color color.Color
	bars  []span
}

func (m *barMarks) add(y, half, v float64) { m.bars = append(m.bars, span{y, half, v}) }

func (m *barMarks) style() draw.LineStyle {
	return draw.LineStyle{Color: m.color, Width: vg.Points(2.5)}
}

// Plot implements plot.Plotter.
func (m *barMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, s := range m.bars {
		x := trX(s.v)
		c.StrokeLine2(m.style(), x, trY(s.y-s.half), x, trY(s.y+s.half))
	}
}

// Thumbnail implements plot.Thumbnailer.
func (m *barMarks) Thumbnail(c *draw.Canvas) {
	x := c.Center().X
	c.StrokeLine2(m.style(), x, c.Min.Y, x, c.Max.Y)
}

// refLine is a dashed vertical line across the plot with a label at its
// top, in the free space above the first row.
type refLine struct {
	at    float64
	label string
	style text.Style
}

// Plot implements plot.Plotter.
func (l *refLine) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(l.at)
	c.StrokeLine2(draw.LineStyle{Color: targetColor, Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}},
		x, c.Min.Y, x, c.Max.Y)
	st := l.style
	st.Color = targetColor
	st.YAlign = draw.YTop
	c.FillText(st, vg.Point{X: x + vg.Points(4), Y: c.Max.Y - vg.Points(2)}, l.label)
}

// group is the series that share one plot, in the order the file has them.
type group struct {
	name   string
	series []Series
	points []plotter.XYs
}

// seriesGroups gathers the series by group, keeping only points with both
// coordinates (and x > 0 on a log axis), sorted by x so that a line never
// doubles back.
func seriesGroups(all []Series) []*group {
	var groups []*group
	byName := map[string]*group{}
	for _, s := range all {
		var pts plotter.XYs
		for i := range min(len(s.X), len(s.Y)) {
			x, y := s.X[i], s.Y[i]
			if x == nil || y == nil || (s.LogX && !positive(x)) {
				continue
			}
			pts = append(pts, plotter.XY{X: *x, Y: *y})
		}
		if len(pts) == 0 {
			continue
		}
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
		g := byName[s.Group]
		if g == nil {
			g = &group{name: s.Group}
			byName[s.Group] = g
			groups = append(groups, g)
		}
		g.series = append(g.series, s)
		g.points = append(g.points, pts)
	}
	return groups
}

// plotSeries draws one group: one line with markers per path.
func plotSeries(g *group, styles map[string]pathStyle, note, path string) (err error) {
	defer recoverDraw(path, &err)
	p := plot.New()
	p.Title.Text = g.name
	p.Add(plotter.NewGrid())
	logX := false
	var xs []float64
	minY := math.Inf(1)
	var legend []legendEntry
	for i, s := range g.series {
		if p.X.Label.Text == "" {
			p.X.Label.Text = s.XLabel
		}
		if p.Y.Label.Text == "" {
			p.Y.Label.Text = s.YLabel
		}
		logX = logX || s.LogX
		line, points, err := plotter.NewLinePoints(g.points[i])
		if err != nil {
			return fmt.Errorf("%s, %s: %w", g.name, s.Path, err)
		}
		st := styles[s.Path]
		line.Color = st.color
		line.Width = vg.Points(2)
		points.Color = st.color
		points.Shape = st.shape
		points.Radius = vg.Points(4)
		p.Add(line, points)
		legend = append(legend, legendEntry{s.Path, []plot.Thumbnailer{line, points}})
		for _, pt := range g.points[i] {
			xs = append(xs, pt.X)
			minY = math.Min(minY, pt.Y)
		}
	}
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = xTicks(xs)
		lo, hi := p.X.Min, p.X.Max
		if lo == hi { // one x: give the log axis a range of its own
			lo, hi = lo/2, hi*2
		}
		p.X.Min, p.X.Max = lo, hi
	}
	if minY >= 0 {
		// From zero, so that the heights of two lines compare honestly.
		p.Y.Min = 0
	}
	return save(p, legend, note, seriesWidthPx, seriesHeightPx, path)
}

// xTicks labels a log x axis at the values measured (1, 16, 64 clients read
// better than 1, 10, 100), unless there are too many to label.
func xTicks(xs []float64) plot.Ticker {
	seen := map[float64]bool{}
	var ticks plot.ConstantTicks
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			ticks = append(ticks, plot.Tick{Value: x, Label: formatNum(x)})
		}
	}
	if len(ticks) > 12 {
		return logTicks{}
	}
	return ticks
}

// sanitize turns a group name into [a-z0-9-] for a file name.
func sanitize(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if s == "" {
		s = "group"
	}
	return s
}

// uniqueName numbers a name already used, since two groups can sanitize to
// the same file name ("B2 GET" and "b2-get") and one would overwrite the
// other.
func uniqueName(name string, used map[string]bool) string {
	u := name
	for i := 2; used[u]; i++ {
		u = fmt.Sprintf("%s-%d", name, i)
	}
	used[u] = true
	return u
}

// recoverDraw turns a panic inside gonum/plot (it panics on values its axes
// cannot show) into an error naming the file, instead of a stack trace.
func recoverDraw(path string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("drawing %s: %v", path, r)
	}
}

// legendEntry is one item of the legend under a plot.
type legendEntry struct {
	label  string
	thumbs []plot.Thumbnailer
}

// dpi is the resolution the PNGs are drawn at: gonum's default, at which
// its 10 and 12 point fonts read well. Sizes are given in pixels.
const dpi = 96

func px(n float64) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// save draws p above a legend and a note, all on one PNG of w x h pixels.
// The legend goes below the plot, not in it: gonum draws its legend over
// the data, where it would hide bars and lines.
func save(p *plot.Plot, legend []legendEntry, note string, w, h int, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(px(float64(w)), px(float64(h))), vgimg.UseDPI(dpi))
	dc := draw.Crop(draw.New(c), px(10), -px(16), px(6), -px(8))
	used := drawFooter(dc, p.Legend.TextStyle, legend, note)
	p.Draw(draw.Crop(dc, 0, 0, used+px(6), 0))

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// drawFooter draws the legend entries side by side (wrapping when they do
// not fit) and the note below them, centred at the bottom of c, and returns
// the height it took.
func drawFooter(c draw.Canvas, st text.Style, legend []legendEntry, note string) vg.Length {
	st.YAlign = draw.YCenter
	st.XAlign = draw.XLeft
	thumbW, gap, sep := vg.Points(18), vg.Points(5), vg.Points(18)
	lineH := st.Height("Mg") * 1.4
	width := c.Max.X - c.Min.X

	// Lay the entries out into lines first, to centre each line.
	var lines [][]int
	var lineW []vg.Length
	for i, e := range legend {
		ew := thumbW + gap + st.Width(e.label)
		last := len(lines) - 1
		if last < 0 || lineW[last]+sep+ew > width {
			lines = append(lines, nil)
			lineW = append(lineW, -sep)
			last++
		}
		lines[last] = append(lines[last], i)
		lineW[last] += sep + ew
	}

	noteSt := st
	noteSt.Font.Size = vg.Points(8.5)
	noteSt.Color = noteColor
	noteSt.XAlign = draw.XCenter
	var used vg.Length
	if note != "" {
		used = noteSt.Height(note) * 1.6
		c.FillText(noteSt, vg.Point{X: c.Center().X, Y: c.Min.Y + used/2}, note)
	}
	for l := len(lines) - 1; l >= 0; l-- {
		y := c.Min.Y + used + lineH/2
		x := c.Center().X - lineW[l]/2
		for _, i := range lines[l] {
			e := legend[i]
			th := st.Height(e.label) * 0.8
			tc := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
				Min: vg.Point{X: x, Y: y - th/2}, Max: vg.Point{X: x + thumbW, Y: y + th/2},
			}}
			for _, t := range e.thumbs {
				t.Thumbnail(&tc)
			}
			c.FillText(st, vg.Point{X: x + thumbW + gap, Y: y}, e.label)
			x += thumbW + gap + st.Width(e.label) + sep
		}
		used += lineH
	}
	return used
}
