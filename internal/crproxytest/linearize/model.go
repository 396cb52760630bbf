// Package linearize checks that reads and writes of MyResources through
// crproxy are linearizable, with github.com/anishathalye/porcupine as
// etcd's robustness tests do: concurrent clients write at the target
// directly and through crproxy and read through crproxy (straight and
// through the client cluster), a Recorder keeps each operation's call and
// return time and outcome, and Check asks porcupine whether some order of
// the operations, each taking effect at one instant between its call and
// its return, explains every answer.
//
// The model is a small register per object: a few MyResources (Keys of
// them, named Prefix0, Prefix1, ...) in a namespace, each absent or
// holding a value (spec.name) and a color (a label). Writes are create,
// merge patch and delete; reads are GET by name and LIST, with a label
// selector on the color and with limit/continue pagination. Every write
// carries a value no other write carries, so an answer names the write it
// reflects.
//
// A write whose outcome is unknown (a timeout, a broken connection, a 504)
// may have taken effect at any time after its call, or never: the model
// allows both, and its return time is the last moment it could still take
// effect: when a read first returned its value, when the target process
// it may have reached was gone (Recorder.TargetGone), or else infinity, as
// in etcd's robustness tests. A write that certainly did nothing (refused
// before it was sent, 503 "nothing was written", a failed precondition)
// and a read that failed say nothing and are left out; a read answered
// with a crproxy Warning (the target was unreachable, so the mirror
// answered, stale by contract) is left out and counted.
//
// Each Group (a namespace of its own) is an independent set of registers;
// linearizability is local, so Check checks the groups apart, and a longer
// history costs time in proportion to its length.
package linearize

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// MaxKeys bounds the objects of one group: the state is a fixed array, so
// porcupine compares states with ==.
const MaxKeys = 8

// Kind is an operation.
type Kind int

const (
	Create Kind = iota
	Patch
	Delete
	Get
	List
)

func (k Kind) String() string {
	return [...]string{"create", "patch", "delete", "get", "list"}[k]
}

// IsWrite is true for create, patch and delete.
func (k Kind) IsWrite() bool { return k <= Delete }

// Entry is one object of the model: absent when Value is "".
type Entry struct {
	Value string // spec.name
	Color string // the ColorLabel label
}

// Exists tells whether the object is there.
func (e Entry) Exists() bool { return e.Value != "" }

func (e Entry) String() string {
	if !e.Exists() {
		return "-"
	}
	return e.Value + "/" + e.Color
}

// State is the objects of one group, by key.
type State [MaxKeys]Entry

// Selected is the state as a LIST with the selector (a color, "" for
// none) answers it: the objects not selected are absent.
func (s State) Selected(color string) State {
	if color == "" {
		return s
	}
	var out State
	for k, e := range s {
		if e.Exists() && e.Color == color {
			out[k] = e
		}
	}
	return out
}

// Input is an operation as it was asked.
type Input struct {
	Group int
	Kind  Kind
	// Key is the object of a write or a GET.
	Key int
	// Value and Color are what a create or a patch writes.
	Value, Color string
	// Selector is a LIST's color selector ("" for none); Limit its page
	// size (0: one page).
	Selector string
	Limit    int
	// Via is where it was sent: "target", "crproxy" (straight) or
	// "client" (through the client cluster's aggregator).
	Via string
}

// Err is how a write failed, when it certainly did.
type Err int

const (
	OK Err = iota
	AlreadyExists
	NotFound
)

func (e Err) String() string { return [...]string{"ok", "AlreadyExists", "NotFound"}[e] }

// Output is an operation's answer.
type Output struct {
	// Unknown: a write whose outcome is not known; Err is meaningless.
	// FailedAt is when it failed and DialedAt when the connection it went
	// on was dialed (history times; DialedAt -1 when unknown): its Return
	// is set later (see Recorder.Operations).
	Unknown            bool
	FailedAt, DialedAt int64
	// Why is how an unknown write failed, for whoever studies the history.
	Why string `json:",omitempty"`
	Err Err
	// Entry is a GET's answer (absent: 404).
	Entry Entry
	// Items is a LIST's answer.
	Items State
}

// Model is the porcupine model of the registers. It is nondeterministic
// (porcupine's power-set construction): a write of unknown outcome leaves
// either the state it would make or the state it found.
func Model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []interface{} { return []interface{}{State{}} },
		Step: func(state, input, output interface{}) []interface{} {
			next := Step(state.(State), input.(Input), output.(Output))
			out := make([]interface{}, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Equal: func(a, b interface{}) bool { return a.(State) == b.(State) },
		Hash: func(state interface{}) uint64 {
			h := fnv.New64a()
			for _, e := range state.(State) {
				h.Write([]byte(e.Value))
				h.Write([]byte{0})
				h.Write([]byte(e.Color))
				h.Write([]byte{0})
			}
			return h.Sum64()
		},
		DescribeOperation: func(input, output interface{}) string {
			return describeOperation(input.(Input), output.(Output))
		},
		DescribeState: func(state interface{}) string { return describeState(state.(State)) },
		DescribeOperationMetadata: func(info interface{}) string {
			if info == nil {
				return ""
			}
			return fmt.Sprint(info)
		},
	}
	return nm.ToModel()
}

// Step is the registers' sequential specification: the states the
// operation may leave when it answered out in state s; none when it could
// not have answered so.
func Step(s State, in Input, out Output) []State {
	k := in.Key
	switch in.Kind {
	case Create, Patch, Delete:
		applied, answer := write(s, in)
		switch {
		case out.Unknown && applied != s:
			return []State{applied, s}
		case out.Unknown, out.Err == answer:
			return []State{applied}
		}
		return nil
	case Get:
		if out.Entry == s[k] {
			return []State{s}
		}
		return nil
	case List:
		if out.Items == s.Selected(in.Selector) {
			return []State{s}
		}
		return nil
	}
	panic(fmt.Sprintf("linearize: unknown operation %d", in.Kind))
}

// write is what a write does in state s: the state after it, and its
// answer.
func write(s State, in Input) (State, Err) {
	k := in.Key
	exists := s[k].Exists()
	switch {
	case in.Kind == Create && exists:
		return s, AlreadyExists
	case in.Kind != Create && !exists:
		return s, NotFound
	case in.Kind == Delete:
		s[k] = Entry{}
	default:
		s[k] = Entry{Value: in.Value, Color: in.Color}
	}
	return s, OK
}

// partition splits a history by group: the groups are independent.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	byGroup := map[int][]porcupine.Operation{}
	var groups []int
	for _, op := range history {
		g := op.Input.(Input).Group
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], op)
	}
	sort.Ints(groups)
	out := make([][]porcupine.Operation, 0, len(groups))
	for _, g := range groups {
		out = append(out, byGroup[g])
	}
	return out
}

func describeOperation(in Input, out Output) string {
	var what string
	switch in.Kind {
	case Create, Patch:
		what = fmt.Sprintf("%s(%d, %s/%s)", in.Kind, in.Key, in.Value, in.Color)
	case Delete, Get:
		what = fmt.Sprintf("%s(%d)", in.Kind, in.Key)
	case List:
		var opts []string
		if in.Selector != "" {
			opts = append(opts, "color="+in.Selector)
		}
		if in.Limit > 0 {
			opts = append(opts, fmt.Sprintf("limit=%d", in.Limit))
		}
		what = "list(" + strings.Join(opts, ",") + ")"
	}
	var answer string
	switch {
	case in.Kind.IsWrite() && out.Unknown:
		answer = "unknown"
	case in.Kind.IsWrite():
		answer = out.Err.String()
	case in.Kind == Get:
		answer = out.Entry.String()
	default:
		answer = describeState(out.Items)
	}
	return fmt.Sprintf("%s %s -> %s", in.Via, what, answer)
}

func describeState(s State) string {
	var parts []string
	for k, e := range s {
		if e.Exists() {
			parts = append(parts, fmt.Sprintf("%d:%s", k, e))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}
