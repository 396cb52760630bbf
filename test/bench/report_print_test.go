package bench

import (
	"math"
	"strings"
	"testing"
)

// TestPrintConditions checks that a quiet row and its busy twin are
// printed side by side, and the bars counted, each with its floor's.
func TestPrintConditions(t *testing.T) {
	r := &report{}
	quiet, busy := condition{}, condition{busy: true, suffix: ", busy target (50 writes/s)"}
	nan := math.NaN()
	fq, fb := figures{2, 2.1, 3, 2.04, nan}, figures{2, 3, 3, 2.4, nan}
	r.add(floorOf(barAtMost(quiet.row("B4", "create", "p50", "ms"), 1.1, fq), fq, pathPlainHop), fq)
	r.add(floorOf(barAtMost(busy.row("B4", "create", "p50", "ms"), 1.1, fb), fb, pathPlainHop), fb)
	// A list is answered from the mirror: the replay is its floor.
	fl := figures{100, 30, 50, 120, 10}
	r.add(floorOf(barAtMost(row{ID: "B1", Case: "LIST", Metric: "p50", Unit: "ms"}, 0.12, fl), fl, pathReplay), fl)
	var b strings.Builder
	r.printMarkdown(&b)
	out := b.String()
	for _, want := range []string{
		"| B4 | create | p50 | 2.00 ms | 2.10 ms | 1.05 | 1.02 (plain hop) | ≤ 1.1x target | yes | 2.00 ms | 3.00 ms | 1.50 | 1.20 (plain hop) | ≤ 1.1x target | **no** |",
		"| B4 | create, busy target (50 writes/s) | p50 | 2.00 ms | 3.00 ms | 1.50 | 3.00 ms | 1.50 | 2.40 ms | 1.20 |  |  | ≤ 1.1x target | **no** | **no** (plain hop) |",
		"| B1 | LIST | p50 | 100 ms | 30.0 ms | 0.30 | 50.0 ms | 0.50 | 120 ms | 1.20 | 10.0 ms | 0.10 | ≤ 0.12x target | **no** | yes (replay) |",
		"Bars: 1 of 3 met; 1 of the 2 missed are missed by their floor too.\n- B1 LIST, p50: ≤ 0.12x target (0.30x; replay 0.10x)\n- B4 create, busy target (50 writes/s), p50: ≤ 1.1x target (1.50x; plain hop 1.20x), missed by the plain hop too\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}
