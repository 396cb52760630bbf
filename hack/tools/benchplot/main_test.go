package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunExample draws testdata/example.json and checks every file the
// docs link to is a PNG of the promised size.
func TestRunExample(t *testing.T) {
	out := t.TempDir()
	if err := run("testdata/example.json", out); err != nil {
		t.Fatal(err)
	}
	// 12 of the example's 13 rows have a ratio; the 13th is null.
	w, h := ratiosSize(12)
	want := map[string][2]int{
		"ratios.png":                {w, h},
		"series-b2-get-rv-0.png":    {seriesWidthPx, seriesHeightPx},
		"series-b1-list-rv-p50.png": {seriesWidthPx, seriesHeightPx},
	}
	for name, size := range want {
		checkPNG(t, filepath.Join(out, name), size[0], size[1])
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("wrote %v, want only %d files", names, len(want))
	}
}

func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("%s is %dx%d, want %dx%d", path, cfg.Width, cfg.Height, w, h)
	}
	// DecodeConfig reads the header only; decode the whole image too.
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(f); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

func TestRunBadJSON(t *testing.T) {
	in := filepath.Join(t.TempDir(), "bench.json")
	if err := os.WriteFile(in, []byte("{\n  \"rows\": [\n    {\"id\": \"B1\",, }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "plots")
	err := run(in, out)
	if err == nil {
		t.Fatal("run took bad JSON")
	}
	if msg := err.Error(); !strings.Contains(msg, "not valid benchmark JSON") || !strings.Contains(msg, "line 3, column 17") {
		t.Errorf("error %q does not say where the JSON is bad", msg)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("out folder made for bad input: %v", err)
	}
}

// TestRunWrongType checks a number given as a string is reported too, with
// its place, rather than drawn as zero.
func TestRunWrongType(t *testing.T) {
	in := filepath.Join(t.TempDir(), "bench.json")
	if err := os.WriteFile(in, []byte(`{"rows": [{"id": "B1", "ratio": "0.5"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(in, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("run(%s) = %v, want an error with a line", in, err)
	}
}

// TestRunNothingToPlot checks inputs with no figure write nothing and
// succeed, so a docs step after a failed benchmark does not fail as well.
func TestRunNothingToPlot(t *testing.T) {
	for name, body := range map[string]string{
		"empty file":   "",
		"blank":        " \n",
		"null":         "null",
		"no rows":      `{"rows": [], "series": []}`,
		"all nulls":    `{"rows": [{"id": "B1", "ratio": null}], "series": [{"group": "g", "x": [1, null], "y": [null, 2]}]}`,
		"not drawable": `{"rows": [{"id": "B1", "ratio": 0}], "series": [{"group": "g", "logX": true, "x": [0], "y": [1]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "bench.json")
			if err := os.WriteFile(in, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "plots")
			if err := run(in, out); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("out folder made with nothing to plot: %v", err)
			}
		})
	}
}

// TestRunSparse draws inputs at the edges gonum/plot is touchy about: one
// row, a series of one point on a log axis, far-off ratios, groups whose
// names sanitize alike.
func TestRunSparse(t *testing.T) {
	in := filepath.Join(t.TempDir(), "bench.json")
	body := `{"rows": [{"id": "B9", "ratio": 1e-4, "viaClientRatio": 0, "barRatio": 500}],
	  "series": [
	    {"group": "B2 GET", "path": "a", "logX": true, "x": [16], "y": [5]},
	    {"group": "b2-get", "path": "b", "x": [1, 2, 3], "y": [-1, 0, 1]}]}`
	if err := os.WriteFile(in, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	w, h := ratiosSize(1)
	checkPNG(t, filepath.Join(out, "ratios.png"), w, h)
	checkPNG(t, filepath.Join(out, "series-b2-get.png"), seriesWidthPx, seriesHeightPx)
	checkPNG(t, filepath.Join(out, "series-b2-get-2.png"), seriesWidthPx, seriesHeightPx)
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"B2 GET rv=0":       "b2-get-rv-0",
		`B1 LIST rv="" p50`: "b1-list-rv-p50",
		"  --Ünïcode--  ":   "n-code",
		"":                  "group",
		"already-fine-123":  "already-fine-123",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogTicks(t *testing.T) {
	var labels []string
	for _, tk := range (logTicks{}).Ticks(0.01, 10) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got, want := strings.Join(labels, " "), "0.01 0.02 0.05 0.1 0.2 0.5 1 2 5 10"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
}
