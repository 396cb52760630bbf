package linearize

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// h builds toy histories: one operation per call, times in arbitrary
// units.
type h []porcupine.Operation

func (x *h) add(client int, call, ret int64, in Input, out Output) {
	if in.Via == "" {
		in.Via = "test"
	}
	*x = append(*x, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

func (x *h) create(client int, call, ret int64, key int, value, color string, out Output) {
	x.add(client, call, ret, Input{Kind: Create, Key: key, Value: value, Color: color}, out)
}

func (x *h) patch(client int, call, ret int64, key int, value, color string, out Output) {
	x.add(client, call, ret, Input{Kind: Patch, Key: key, Value: value, Color: color}, out)
}

func (x *h) get(client int, call, ret int64, key int, e Entry) {
	x.add(client, call, ret, Input{Kind: Get, Key: key}, Output{Entry: e})
}

func (x *h) list(client int, call, ret int64, selector string, items State) {
	x.add(client, call, ret, Input{Kind: List, Selector: selector}, Output{Items: items})
}

func state(entries map[int]Entry) State {
	var s State
	for k, e := range entries {
		s[k] = e
	}
	return s
}

var unknown = Output{Unknown: true}

func check(t *testing.T, history h) Result {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "artifacts")
	res, err := CheckHistory(patchUnknown(append([]porcupine.Operation(nil), history...), nil), 0, dir)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantOutcome(t *testing.T, history h, want porcupine.CheckResult) Result {
	t.Helper()
	res := check(t, history)
	got, viz := res.Outcome, res.Visualization
	if got != want {
		t.Fatalf("history checked %s, want %s (visualization: %q)", got, want, viz)
	}
	if (viz != "") != (want != porcupine.Ok) {
		t.Fatalf("outcome %s with visualization %q", got, viz)
	}
	if viz != "" {
		data, err := os.ReadFile(viz)
		if err != nil || !strings.Contains(string(data), "<html") {
			t.Fatalf("visualization %s: %v", viz, err)
		}
	}
	return res
}

var (
	aRed  = Entry{Value: "a", Color: "red"}
	bBlue = Entry{Value: "b", Color: "blue"}
)

// Concurrent operations may take effect in either order; each read
// reflects every write that returned before it was called.
func TestModelLinearizable(t *testing.T) {
	var x h
	x.create(0, 0, 10, 0, "a", "red", Output{})
	x.get(1, 5, 8, 0, Entry{}) // concurrent with the create: before it
	x.get(1, 12, 20, 0, aRed)  // after it
	x.patch(0, 15, 25, 0, "b", "blue", Output{})
	x.list(2, 18, 30, "", state(map[int]Entry{0: aRed})) // concurrent with the patch: before it
	x.list(2, 31, 40, "blue", state(map[int]Entry{0: bBlue}))
	x.list(2, 31, 40, "red", State{})
	x.create(1, 32, 38, 0, "c", "red", Output{Err: AlreadyExists})
	x.add(0, 41, 50, Input{Kind: Delete, Key: 0}, Output{})
	x.get(1, 51, 60, 0, Entry{})
	x.add(0, 61, 70, Input{Kind: Delete, Key: 0}, Output{Err: NotFound})
	x.patch(0, 71, 80, 0, "d", "red", Output{Err: NotFound})
	wantOutcome(t, x, porcupine.Ok)
	if stale := StaleReads(patchUnknown(x, nil), 5); len(stale) != 0 {
		t.Fatalf("stale reads in a linearizable history: %q", stale)
	}
}

// A read that misses a write acknowledged before it began is stale.
func TestModelStaleGet(t *testing.T) {
	var x h
	x.create(0, 0, 10, 0, "a", "red", Output{})
	x.patch(0, 20, 30, 0, "b", "blue", Output{})
	x.get(1, 40, 50, 0, aRed)
	res := wantOutcome(t, x, porcupine.Illegal)
	if len(res.Stale) != 1 || !strings.Contains(res.Stale[0], "test get(0) -> a/red (called at 40ns) shows key 0 = a/red, but it can only be one of [b/blue]: test patch(0, b/blue) -> ok returned at 30ns") {
		t.Fatalf("stale reads: %q", res.Stale)
	}
	t.Log(res.Stale[0])
}

// A selector's answer is stale too when it still selects an object a
// finished write moved out of the selection.
func TestModelStaleSelector(t *testing.T) {
	var x h
	x.create(0, 0, 10, 0, "a", "red", Output{})
	x.patch(0, 20, 30, 0, "b", "blue", Output{})
	x.list(1, 40, 50, "red", state(map[int]Entry{0: aRed}))
	if res := wantOutcome(t, x, porcupine.Illegal); len(res.Stale) != 1 {
		t.Fatalf("stale reads: %q", res.Stale)
	}
}

// A LIST is one state: it cannot hold a later write of one object and an
// earlier state of another that was written before it.
func TestModelListIsOneState(t *testing.T) {
	var x h
	x.create(0, 0, 10, 0, "a", "red", Output{})
	x.create(0, 11, 19, 1, "b", "blue", Output{})
	x.patch(0, 20, 30, 0, "a2", "red", Output{})
	x.patch(0, 40, 50, 1, "b2", "blue", Output{})
	x.list(1, 15, 55, "", state(map[int]Entry{0: aRed, 1: {Value: "b2", Color: "blue"}}))
	wantOutcome(t, x, porcupine.Illegal)

	// Concurrent writes: either order explains it.
	var y h
	y.create(0, 0, 10, 0, "a", "red", Output{})
	y.create(0, 11, 19, 1, "b", "blue", Output{})
	y.patch(0, 20, 30, 0, "a2", "red", Output{})
	y.patch(2, 20, 30, 1, "b2", "blue", Output{})
	y.list(1, 15, 55, "", state(map[int]Entry{0: aRed, 1: {Value: "b2", Color: "blue"}}))
	wantOutcome(t, y, porcupine.Ok)
}

// A write of unknown outcome may take effect any time after its call, or
// never; once a read returned its value it cannot be undone.
func TestModelUnknownOutcome(t *testing.T) {
	t.Run("never seen", func(t *testing.T) {
		var x h
		x.create(0, 0, unknownReturn, 0, "a", "red", unknown)
		x.get(1, 20, 30, 0, Entry{})
		x.get(1, 40, 50, 0, Entry{})
		wantOutcome(t, x, porcupine.Ok)
	})
	t.Run("seen late", func(t *testing.T) {
		var x h
		x.create(0, 0, unknownReturn, 0, "a", "red", unknown)
		x.get(1, 20, 30, 0, Entry{})
		x.get(1, 40, 50, 0, aRed)
		x.list(1, 60, 70, "", state(map[int]Entry{0: aRed}))
		wantOutcome(t, x, porcupine.Ok)
	})
	t.Run("seen, then gone", func(t *testing.T) {
		var x h
		x.create(0, 0, unknownReturn, 0, "a", "red", unknown)
		x.get(1, 40, 50, 0, aRed)
		x.get(1, 60, 70, 0, Entry{})
		wantOutcome(t, x, porcupine.Illegal)
	})
	t.Run("seen before it was asked", func(t *testing.T) {
		var x h
		x.get(1, 0, 5, 0, aRed)
		x.create(0, 10, unknownReturn, 0, "a", "red", unknown)
		wantOutcome(t, x, porcupine.Illegal)
	})
	t.Run("a patch cannot delete", func(t *testing.T) {
		var x h
		x.create(0, 0, 10, 0, "a", "red", Output{})
		x.patch(1, 20, unknownReturn, 0, "b", "blue", unknown)
		x.get(2, 30, 40, 0, Entry{})
		res := wantOutcome(t, x, porcupine.Illegal)
		if len(res.Stale) != 1 || !strings.Contains(res.Stale[0], "can only be one of [a/red b/blue]") {
			t.Fatalf("stale reads: %q", res.Stale)
		}
	})
	t.Run("a delete", func(t *testing.T) {
		var x h
		x.create(0, 0, 10, 0, "a", "red", Output{})
		x.add(0, 20, unknownReturn, Input{Kind: Delete, Key: 0}, unknown)
		x.get(1, 30, 40, 0, aRed)
		x.get(1, 50, 60, 0, Entry{})
		wantOutcome(t, x, porcupine.Ok)
	})
}

// A write of unknown outcome that failed before the target restarted
// took effect while the old target ran, or never.
func TestModelUnknownOutcomeAcrossRestart(t *testing.T) {
	outages := []outage{{dead: 10, starting: 20}}
	failed := func(at int64) Output { return Output{Unknown: true, FailedAt: at} }
	run := func(x h) porcupine.CheckResult {
		t.Helper()
		res, err := CheckHistory(patchUnknown(append([]porcupine.Operation(nil), x...), outages), 0, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return res.Outcome
	}
	var never h
	never.create(0, 0, unknownReturn, 0, "a", "red", failed(5))
	never.get(1, 30, 40, 0, Entry{})
	if got := run(never); got != porcupine.Ok {
		t.Errorf("never took effect: %s", got)
	}
	var late h
	late.create(0, 0, unknownReturn, 0, "a", "red", failed(5))
	late.get(1, 12, 15, 0, Entry{})
	late.get(1, 30, 40, 0, aRed)
	if got := run(late); got != porcupine.Illegal {
		t.Errorf("took effect after the target was gone: %s", got)
	}
	var after h
	after.create(0, 25, unknownReturn, 0, "a", "red", failed(28))
	after.get(1, 30, 40, 0, Entry{})
	after.get(1, 50, 60, 0, aRed)
	if got := run(after); got != porcupine.Ok {
		t.Errorf("failed after the restart, took effect later: %s", got)
	}
	if ops := patchUnknown(append([]porcupine.Operation(nil), late...), outages); ops[0].Return != 10 {
		t.Errorf("bounded at %d, want 10", ops[0].Return)
	}
	// Straight at the target, the connection tells which process got it:
	// one dialed before the outage, though it failed after the restart.
	var conn h
	conn.add(0, 0, unknownReturn, Input{Kind: Create, Key: 0, Value: "a", Color: "red", Via: "target"}, Output{Unknown: true, FailedAt: 25, DialedAt: 5})
	conn.add(0, 0, unknownReturn, Input{Kind: Create, Key: 1, Value: "b", Color: "red", Via: "target"}, Output{Unknown: true, FailedAt: 25, DialedAt: 21})
	conn.add(0, 0, unknownReturn, Input{Kind: Create, Key: 2, Value: "c", Color: "red", Via: "crproxy"}, Output{Unknown: true, FailedAt: 25, DialedAt: 5})
	conn.get(1, 30, 40, 0, Entry{})
	ops := patchUnknown(append([]porcupine.Operation(nil), conn...), outages)
	if ops[0].Return != 10 || ops[1].Return != 40+int64(time.Second) || ops[2].Return != 40+int64(time.Second) {
		t.Errorf("bounded at %d, %d, %d; want 10 and infinity twice", ops[0].Return, ops[1].Return, ops[2].Return)
	}
}

// Groups are checked apart, and a stale read in any of them fails the
// history.
func TestModelGroups(t *testing.T) {
	var x h
	x.create(0, 0, 10, 0, "a", "red", Output{})
	x.add(1, 0, 10, Input{Group: 1, Kind: Create, Key: 0, Value: "b", Color: "blue"}, Output{})
	x.get(2, 20, 30, 0, aRed)
	x.add(3, 20, 30, Input{Group: 1, Kind: Get, Key: 0}, Output{Entry: bBlue})
	wantOutcome(t, x, porcupine.Ok)
	x.add(3, 40, 50, Input{Group: 1, Kind: Get, Key: 0}, Output{})
	wantOutcome(t, x, porcupine.Illegal)
	if parts := partition(x); len(parts) != 2 || len(parts[0]) != 2 || len(parts[1]) != 3 {
		t.Fatalf("partition: %d groups", len(parts))
	}
}

func TestGroupKeys(t *testing.T) {
	g := Group{Prefix: "lin-", Keys: 3}
	for name, want := range map[string]int{"lin-0": 0, "lin-2": 2, "lin-3": -1, "lin-01": -1, "lin-": -1, "other-1": -1, "lin--1": -1} {
		if got := g.key(name); got != want {
			t.Errorf("key(%q) = %d, want %d", name, got, want)
		}
	}
	if g.Name(2) != "lin-2" {
		t.Errorf("Name(2) = %q", g.Name(2))
	}
}

func TestClassifyWrite(t *testing.T) {
	refused := Answer{Err: syscall.ECONNREFUSED} // Sent false
	for _, c := range []struct {
		what string
		kind Kind
		a    Answer
		out  Output
		done bool
	}{
		{"acknowledged", Patch, Answer{Sent: true, Code: 200}, Output{}, true},
		{"exists", Create, Answer{Sent: true, Code: 409, Reason: "AlreadyExists"}, Output{Err: AlreadyExists}, true},
		{"not found", Delete, Answer{Sent: true, Code: 404, Reason: "NotFound", DetailsName: "lin-0"}, Output{Err: NotFound}, true},
		// a starting apiserver, before the CRD's routes are installed
		{"no route", Delete, Answer{Sent: true, Code: 404, Reason: "NotFound", Message: "the server could not find the requested resource"}, Output{}, false},
		{"precondition failed", Delete, Answer{Sent: true, Code: 409, Reason: "Conflict"}, Output{}, false},
		{"never sent", Create, refused, Output{}, false},
		{"connection broken", Create, Answer{Sent: true, Err: errors.New("EOF")}, unknown, true},
		{"crproxy refused", Patch, Answer{Sent: true, Code: 503, Message: "target default/target unreachable since 1s; nothing was written"}, Output{}, false},
		{"target shutting down", Create, Answer{Sent: true, Code: 503, Message: "apiserver is shutting down"}, Output{}, false},
		{"target starting", Patch, Answer{Sent: true, Code: 503, Message: "the request has been made before all known HTTP paths have been installed, please try again"}, Output{}, false},
		{"outcome unknown", Patch, Answer{Sent: true, Code: 504, Message: "the target did not answer"}, unknown, true},
		{"server error", Create, Answer{Sent: true, Code: 500}, unknown, true},
	} {
		out, done := classifyWrite(c.kind, "lin-0", c.a)
		if out != c.out || done != c.done {
			t.Errorf("%s: %+v done=%v, want %+v done=%v", c.what, out, done, c.out, c.done)
		}
	}
	if (Answer{Warnings: []string{`299 crproxy "target down"`}}).CrproxyWarning() == "" {
		t.Error("crproxy's Warning not recognized")
	}
	if (Answer{Warnings: []string{`299 - "deprecated"`}}).CrproxyWarning() != "" {
		t.Error("another Warning taken for crproxy's")
	}
}

// A history written to a file reads back the same.
func TestHistoryFile(t *testing.T) {
	var x h
	x.create(0, 0, 10, 0, "a", "red", Output{})
	x.add(0, 20, unknownReturn, Input{Kind: Delete, Key: 0, Via: "target"}, Output{Unknown: true, FailedAt: 30, DialedAt: 3})
	x.list(1, 15, 55, "red", state(map[int]Entry{0: aRed}))
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := WriteHistory(path, x); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(x) {
		t.Fatalf("read %d operations, wrote %d", len(got), len(x))
	}
	for i := range x {
		if got[i].Input != x[i].Input || got[i].Output != x[i].Output || got[i].Call != x[i].Call || got[i].Return != x[i].Return || got[i].ClientId != x[i].ClientId {
			t.Errorf("operation %d read back as %+v, want %+v", i, got[i], x[i])
		}
	}
}
