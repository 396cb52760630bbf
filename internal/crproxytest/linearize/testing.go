package linearize

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// RequireLinearizable checks rec's history within timeout and fails t
// unless it is linearizable, naming the visualization written into dir
// and the plainest stale reads.
func RequireLinearizable(t testing.TB, rec *Recorder, timeout time.Duration, dir string) {
	t.Helper()
	res, err := rec.Check(timeout, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("porcupine: %s, %d operations (%d of unknown outcome pending to the end) checked in %s", res.Outcome, res.Operations, res.Unbounded, res.Took.Round(time.Millisecond))
	switch res.Outcome {
	case porcupine.Ok:
	case porcupine.Illegal:
		stale := "none plain (see the visualization)"
		if len(res.Stale) > 0 {
			stale = "\n  " + strings.Join(res.Stale, "\n  ")
		}
		t.Fatalf("the history is not linearizable: a read through crproxy missed a write acknowledged before it began, or a read or a write saw one undone. "+
			"See %s (open it in a browser: each client's operations, and the longest linearizations porcupine found; history.jsonl beside it is the history). "+
			"Reads stale in any order: %s", res.Visualization, stale)
	default:
		t.Fatalf("porcupine could not decide within %s (%s); see %s", timeout, res.Outcome, res.Visualization)
	}
}
