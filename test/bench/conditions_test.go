package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/crproxy/crproxy/internal/crproxytest"
)

// condition is the state of the target while a benchmark measures: quiet,
// or busy with the churner's writes.
type condition struct {
	busy bool
	// suffix ends the case name of the condition's rows ("" when quiet).
	suffix string
}

// row is a row of this condition: its case is name and the condition's
// suffix.
func (c condition) row(id, name, metric, unit string) row {
	return row{ID: id, Case: name + c.suffix, Metric: metric, Unit: unit, Condition: c.name(), base: name}
}

// name is "quiet" or "busy".
func (c condition) name() string {
	if c.busy {
		return "busy"
	}
	return "quiet"
}

// conditions are the conditions B1, B2 and B4 measure in: quiet, and with
// bench.churn > 0 busy.
func conditions() []condition {
	c := []condition{{}}
	if *flagChurn > 0 {
		c = append(c, condition{busy: true, suffix: fmt.Sprintf(", busy target (%g writes/s)", *flagChurn)})
	}
	return c
}

// inConditions runs measure once per condition, quiet first; while a busy
// one runs, the churner writes at the target, and its achieved rate and
// errors go into the report's notes.
func (e *benchEnv) inConditions(t *testing.T, ctx context.Context, r *report, id string, measure func(c condition)) {
	for _, c := range conditions() {
		if !c.busy {
			measure(c)
			continue
		}
		func() {
			ch, err := crproxytest.StartChurn(ctx, e.target, *flagChurn)
			if err != nil {
				t.Fatal(err)
			}
			// Deferred, so a benchmark that fails still stops the churner
			// and reports what it did.
			defer func() { r.note("%s busy: %s", id, ch.Stop()) }()
			measure(c)
		}()
	}
}
