package bench

import (
	"strings"
	"testing"
)

// TestPrintConditions checks that a quiet row and its busy twin are
// printed side by side, and the bars counted.
func TestPrintConditions(t *testing.T) {
	r := &report{}
	quiet, busy := condition{}, condition{busy: true, suffix: ", busy target (50 writes/s)"}
	r.add(barAtMost(quiet.row("B4", "create", "p50", "ms"), 1.1, figures{2, 2.1, 3}), figures{2, 2.1, 3})
	r.add(barAtMost(busy.row("B4", "create", "p50", "ms"), 1.1, figures{2, 3, 3}), figures{2, 3, 3})
	var b strings.Builder
	r.printMarkdown(&b)
	out := b.String()
	for _, want := range []string{
		"| B4 | create | p50 | 2.00 ms | 2.10 ms | 1.05 | ≤ 1.1x target | yes | 2.00 ms | 3.00 ms | 1.50 | ≤ 1.1x target | **no** |",
		"Bars: 1 of 2 met.\n- B4 create, busy target (50 writes/s), p50: ≤ 1.1x target (1.50x)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}
