package linearize

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// StaleReads finds, in a history (as Operations returns it), reads that
// are stale whatever the order of concurrent operations. For a read of an
// object, W is the last acknowledged write of it that returned before the
// read began, and the others are the writes of it that may have taken
// effect between W and the read (acknowledged or of unknown outcome,
// returned after W was called, called before the read returned); the read
// must show W's effect or one those others can make of it. Porcupine's
// verdict is the proof; these are its plainest witnesses, for a failure
// message that can be read without the visualization. At most limit are
// described.
func StaleReads(ops []porcupine.Operation, limit int) []string {
	type key struct{ group, key int }
	writes := map[key][]porcupine.Operation{}
	for _, op := range ops {
		in, out := op.Input.(Input), op.Output.(Output)
		if in.Kind.IsWrite() && (out.Unknown || out.Err == OK) {
			k := key{in.Group, in.Key}
			writes[k] = append(writes[k], op)
		}
	}
	var found []string
	sorted := append([]porcupine.Operation(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	for _, read := range sorted {
		in, out := read.Input.(Input), read.Output.(Output)
		if in.Kind != Get && in.Kind != List {
			continue
		}
		for k := 0; k < MaxKeys; k++ {
			if in.Kind == Get && k != in.Key {
				continue
			}
			w, possible, between, ok := possibleEntries(writes[key{in.Group, k}], read)
			if !ok {
				continue
			}
			got := out.Entry
			if in.Kind == List {
				got = out.Items[k]
				selected := map[Entry]bool{}
				for e := range possible {
					if in.Selector != "" && e.Color != in.Selector {
						e = Entry{}
					}
					selected[e] = true
				}
				possible = selected
			}
			if possible[got] {
				continue
			}
			var want []string
			for e := range possible {
				want = append(want, e.String())
			}
			sort.Strings(want)
			found = append(found, fmt.Sprintf("group %d: %s (called at %s) shows key %d = %s, but it can only be one of %v: %s returned at %s, and %d other writes of key %d may have taken effect between it and the read",
				in.Group, describeOperation(in, out), at(read.Call), k, got, want, describeOperation(w.Input.(Input), w.Output.(Output)), at(w.Return), between, k))
			if len(found) >= limit {
				return found
			}
			break
		}
	}
	return found
}

// possibleEntries is what a read may find of one object, given its
// writes: W, the last acknowledged write that returned before the read
// began, then any of the writes that may come between it and the read, in
// any order. ok is false when there is no such W.
func possibleEntries(writes []porcupine.Operation, read porcupine.Operation) (w porcupine.Operation, possible map[Entry]bool, between int, ok bool) {
	for _, op := range writes {
		if !op.Output.(Output).Unknown && op.Return < read.Call && (!ok || op.Call > w.Call) {
			w, ok = op, true
		}
	}
	if !ok {
		return w, nil, 0, false
	}
	apply := func(e Entry, in Input) Entry {
		switch {
		case in.Kind == Delete:
			return Entry{}
		case in.Kind == Create && !e.Exists(), in.Kind == Patch && e.Exists():
			return Entry{Value: in.Value, Color: in.Color}
		}
		return e
	}
	possible = map[Entry]bool{apply(Entry{}, w.Input.(Input)): true}
	if in := w.Input.(Input); in.Kind == Patch {
		// An acknowledged patch found the object: it is there after it.
		possible = map[Entry]bool{{Value: in.Value, Color: in.Color}: true}
	}
	var others []Input
	for _, op := range writes {
		if op.Call == w.Call && op.Return == w.Return && op.ClientId == w.ClientId {
			continue
		}
		if op.Return >= w.Call && op.Call <= read.Return {
			others = append(others, op.Input.(Input))
		}
	}
	for changed := true; changed; {
		changed = false
		for e := range possible {
			for _, in := range others {
				if next := apply(e, in); !possible[next] {
					possible[next], changed = true, true
				}
			}
		}
	}
	return w, possible, len(others), true
}

// at is a history time, the time since the recorder started.
func at(t int64) string {
	d := time.Duration(t)
	if d > time.Millisecond {
		d = d.Round(time.Microsecond)
	}
	return d.String()
}
