package linearize

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// ColorLabel is the label that holds an object's color.
const ColorLabel = "linearize.crproxy.dev/color"

// Group is one set of registers: Keys objects named Prefix0, Prefix1, ...
// in Namespace, which must exist at the target and in the client cluster.
type Group struct {
	Namespace, Prefix string
	Keys              int
}

// Name is the object name of key k.
func (g Group) Name(k int) string { return g.Prefix + strconv.Itoa(k) }

// key is the key of an object name, or -1.
func (g Group) key(name string) int {
	rest, ok := strings.CutPrefix(name, g.Prefix)
	if !ok {
		return -1
	}
	k, err := strconv.Atoi(rest)
	if err != nil || k < 0 || k >= g.Keys || strconv.Itoa(k) != rest {
		return -1
	}
	return k
}

// Stats count what the recorder saw, and why operations were left out.
type Stats struct {
	// Writes answered: acknowledged, failed as the model says (exists,
	// not found), unknown outcome, and left out because they certainly did
	// nothing (never sent, refused, a failed precondition).
	WritesOK, WritesFailed, WritesUnknown, WritesNotDone int
	// Reads answered, reads left out because they carried a crproxy
	// Warning (stale by contract), and reads that failed.
	Reads, ReadsWarned, ReadsFailed int
	// FirstWarning, FirstReadError and FirstUnknown are examples, for the
	// report.
	FirstWarning, FirstReadError, FirstUnknown, FirstNotDone string
}

func (s Stats) String() string {
	out := fmt.Sprintf("writes: %d acknowledged, %d failed as modeled, %d unknown outcome, %d left out (did nothing); "+
		"reads: %d checked, %d left out with a crproxy Warning, %d failed",
		s.WritesOK, s.WritesFailed, s.WritesUnknown, s.WritesNotDone, s.Reads, s.ReadsWarned, s.ReadsFailed)
	for _, ex := range []struct{ what, v string }{
		{"first warning", s.FirstWarning}, {"first failed read", s.FirstReadError},
		{"first unknown write", s.FirstUnknown}, {"first write left out", s.FirstNotDone},
	} {
		if ex.v != "" {
			out += "\n  " + ex.what + ": " + ex.v
		}
	}
	return out
}

// Recorder performs operations and keeps the history. It is safe for
// concurrent use.
type Recorder struct {
	// ReadResourceVersion is the resourceVersion reads ask for: "" (a
	// consistent read, the default) or "0", which lets a mirror answer
	// stale: a negative control, to see the check fail.
	ReadResourceVersion string

	groups []Group
	start  time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	stats   Stats
	outages []outage
}

// outage is a time the target process was gone: dead is when it was
// (Stop or Kill returned), starting when a new one began to start.
type outage struct{ dead, starting int64 }

// TargetGone says the target process has ended (call it once Stop or Kill
// returned): no write sent to it before can take effect any more. Unless
// TargetStarting follows, the outage has no end.
func (r *Recorder) TargetGone() {
	now := r.now()
	r.mu.Lock()
	r.outages = append(r.outages, outage{dead: now, starting: math.MaxInt64})
	r.mu.Unlock()
}

// TargetStarting says a new target process is about to start (call it
// just before Start): until now, no request could reach a target since
// TargetGone.
func (r *Recorder) TargetStarting() {
	now := r.now()
	r.mu.Lock()
	if n := len(r.outages); n > 0 {
		r.outages[n-1].starting = now
	}
	r.mu.Unlock()
}

// NewRecorder records operations on groups; group i of an Input is
// groups[i].
func NewRecorder(groups ...Group) *Recorder {
	for _, g := range groups {
		if g.Keys < 1 || g.Keys > MaxKeys {
			panic(fmt.Sprintf("linearize: %d keys, want 1 to %d", g.Keys, MaxKeys))
		}
	}
	return &Recorder{groups: groups, start: time.Now()}
}

// Began is the wall-clock time of the history's time 0, to find an
// operation in the logs.
func (r *Recorder) Began() time.Time { return r.start }

// now is the monotonic time since the recorder started, in nanoseconds.
func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// Stats are the counts so far.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Len is the number of operations recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// unknownReturn marks a write whose outcome is unknown until Operations
// gives it its return time.
const unknownReturn = -1

func (r *Recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *Recorder) count(f func(s *Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// Write performs in (a create, a patch or a delete) through ep as client
// and records it.
func (r *Recorder) Write(ctx context.Context, client int, ep *Endpoint, in Input) {
	g := r.groups[in.Group]
	name := g.Name(in.Key)
	in.Via = ep.Name
	call := r.now()
	var a Answer
	switch in.Kind {
	case Create:
		labels := map[string]any{ColorLabel: in.Color}
		for k, v := range ep.CreateLabels {
			labels[k] = v
		}
		obj := map[string]any{
			"apiVersion": "example.com/v1", "kind": "MyResource",
			"metadata": map[string]any{"name": name, "namespace": g.Namespace, "labels": labels},
			"spec":     map[string]any{"name": in.Value},
		}
		_, a = ep.Create(ctx, g.Namespace, obj)
	case Patch:
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}},"spec":{"name":%q}}`, ColorLabel, in.Color, in.Value)
		_, a = ep.MergePatch(ctx, g.Namespace, name, patch)
	case Delete:
		a = ep.Delete(ctx, g.Namespace, name)
	default:
		panic("linearize: Write of a read")
	}
	ret := r.now()
	out, done := classifyWrite(in.Kind, name, a)
	if !done {
		r.count(func(s *Stats) {
			s.WritesNotDone++
			if s.FirstNotDone == "" {
				s.FirstNotDone = fmt.Sprintf("%s %s %s: %s", ep.Name, in.Kind, name, a.Describe())
			}
		})
		return
	}
	op := porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	r.count(func(s *Stats) {
		switch {
		case out.Unknown:
			s.WritesUnknown++
			if s.FirstUnknown == "" {
				s.FirstUnknown = fmt.Sprintf("%s %s %s: %s", ep.Name, in.Kind, name, a.Describe())
			}
		case out.Err == OK:
			s.WritesOK++
		default:
			s.WritesFailed++
		}
	})
	if out.Unknown {
		unknown := Output{Unknown: true, FailedAt: ret, DialedAt: -1, Why: a.Describe()}
		if !a.Dialed.IsZero() {
			// A connection dialed before the history began: to the process
			// that ran at time 0.
			unknown.DialedAt = max(0, int64(a.Dialed.Sub(r.start)))
		}
		op.Output = unknown
		op.Return = unknownReturn
	}
	r.add(op)
}

// classifyWrite tells what an answer says of a write of the object name:
// its output, or done=false when it certainly did nothing (so the history
// can leave it out). A 404 says the object is absent only when its Status
// names the object: a kube-apiserver that is starting answers 404 "the
// server could not find the requested resource" (no name) for a custom
// resource until it has installed the CRD's routes.
func classifyWrite(kind Kind, name string, a Answer) (out Output, done bool) {
	switch {
	case a.Err != nil && !a.Sent:
		return Output{}, false // connection refused: never sent
	case a.Err != nil:
		return Output{Unknown: true}, true
	case a.OK():
		return Output{Err: OK}, true
	case a.Code == http.StatusConflict && a.Reason == "AlreadyExists" && kind == Create:
		return Output{Err: AlreadyExists}, true
	case a.Code == http.StatusNotFound && a.Reason == "NotFound" && a.DetailsName == name && kind != Create:
		return Output{Err: NotFound}, true
	case a.Code == http.StatusConflict,
		// a failed precondition (crproxy's writes are conditional on the
		// UID it checked): nothing was written
		a.Code == http.StatusTooManyRequests,
		a.Code == http.StatusBadRequest, a.Code == http.StatusUnprocessableEntity,
		a.Code == http.StatusUnauthorized, a.Code == http.StatusForbidden,
		a.Code == http.StatusNotFound, // a create in a missing namespace, a route not installed yet
		a.Code == http.StatusServiceUnavailable && strings.Contains(a.Message, "nothing was written"),
		// a kube-apiserver refusing requests while it shuts down, or
		// before it has installed its routes (when it starts)
		a.Code == http.StatusServiceUnavailable && strings.Contains(a.Message, "apiserver is shutting down"),
		a.Code == http.StatusServiceUnavailable && strings.Contains(a.Message, "before all known HTTP paths have been installed"),
		// the client cluster's aggregator could not reach crproxy
		a.Code == http.StatusServiceUnavailable && strings.Contains(a.Message, "connect: connection refused"):
		return Output{}, false
	default:
		// 504 (crproxy: outcome unknown), other 5xx
		return Output{Unknown: true}, true
	}
}

// Read performs in (a GET or a LIST) through ep as client and records it.
func (r *Recorder) Read(ctx context.Context, client int, ep *Endpoint, in Input) {
	g := r.groups[in.Group]
	in.Via = ep.Name
	var (
		out       Output
		a         Answer
		warning   string
		call, ret int64
	)
	switch in.Kind {
	case Get:
		name := g.Name(in.Key)
		call = r.now()
		var obj *Object
		obj, a = ep.Get(ctx, g.Namespace, name, r.ReadResourceVersion)
		ret = r.now()
		warning = a.CrproxyWarning()
		switch {
		case a.OK():
			out.Entry = Entry{Value: obj.Value, Color: obj.Labels[ColorLabel]}
		case a.Err == nil && a.Code == http.StatusNotFound && a.Reason == "NotFound" && a.DetailsName == name:
			// absent
		default:
			r.readFailed(ep, in, a)
			return
		}
	case List:
		o := ListOptions{Limit: in.Limit, ResourceVersion: r.ReadResourceVersion}
		if in.Selector != "" {
			o.LabelSelector = ColorLabel + "=" + in.Selector
		}
		call = r.now()
		var res *ListResult
		// A paged list is the state at its first page's resourceVersion:
		// it takes effect while the first page is asked.
		res, a = ep.List(ctx, g.Namespace, o, func() { ret = r.now() })
		if res == nil {
			if w := a.CrproxyWarning(); w != "" {
				r.readWarned(w)
				return
			}
			r.readFailed(ep, in, a)
			return
		}
		if len(res.Warnings) > 0 {
			warning = res.Warnings[0]
		}
		for _, obj := range res.Items {
			if k := g.key(obj.Name); k >= 0 {
				out.Items[k] = Entry{Value: obj.Value, Color: obj.Labels[ColorLabel]}
			}
		}
	default:
		panic("linearize: Read of a write")
	}
	if warning != "" {
		r.readWarned(warning)
		return
	}
	r.count(func(s *Stats) { s.Reads++ })
	r.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

func (r *Recorder) readWarned(w string) {
	r.count(func(s *Stats) {
		s.ReadsWarned++
		if s.FirstWarning == "" {
			s.FirstWarning = w
		}
	})
}

func (r *Recorder) readFailed(ep *Endpoint, in Input, a Answer) {
	r.count(func(s *Stats) {
		s.ReadsFailed++
		if s.FirstReadError == "" {
			s.FirstReadError = fmt.Sprintf("%s %s: %s", ep.Name, in.Kind, a.Describe())
		}
	})
}

// Operations is the history for porcupine. A write of unknown outcome
// may take effect any time after its call, or never (the model allows
// both); its return time is when it can take effect no longer:
//
//   - when the first read that returned its value returned (values are
//     unique, so it had taken effect);
//   - or when the target process it may have reached was gone
//     (TargetGone, TargetStarting): straight at the target, the one that
//     ran when its connection was dialed; through crproxy, the one that
//     ran when it failed, if it failed before a new target began to start
//     (this trusts that neither crproxy nor the aggregator sends a request
//     after its caller has given up);
//   - else at infinity, a second after the last time the history saw, as
//     etcd's robustness tests do.
//
// Bounding them matters: each write pending at infinity is concurrent
// with every later operation, and porcupine's search (and memory) grows
// with each.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	outages := append([]outage(nil), r.outages...)
	r.mu.Unlock()
	return patchUnknown(ops, outages)
}

func patchUnknown(ops []porcupine.Operation, outages []outage) []porcupine.Operation {
	type written struct {
		group, key int
		value      string
	}
	seen := map[written]int64{}
	var last int64
	note := func(w written, t int64) {
		if first, ok := seen[w]; !ok || t < first {
			seen[w] = t
		}
	}
	for _, op := range ops {
		last = max(last, op.Call, op.Return)
		in, out := op.Input.(Input), op.Output.(Output)
		switch in.Kind {
		case Get:
			if out.Entry.Exists() {
				note(written{in.Group, in.Key, out.Entry.Value}, op.Return)
			}
		case List:
			for k, e := range out.Items {
				if e.Exists() {
					note(written{in.Group, k, e.Value}, op.Return)
				}
			}
		}
	}
	infinity := last + int64(time.Second)
	for i, op := range ops {
		if op.Return != unknownReturn {
			continue
		}
		in, out := op.Input.(Input), op.Output.(Output)
		ret := infinity
		for _, o := range outages {
			if in.Via == "target" && out.DialedAt >= 0 {
				if o.dead >= out.DialedAt {
					ret = max(op.Call, o.dead)
					break
				}
			} else if out.FailedAt < o.starting {
				ret = max(op.Call, o.dead)
				break
			}
		}
		if in.Kind == Create || in.Kind == Patch {
			if t, ok := seen[written{in.Group, in.Key, in.Value}]; ok && t >= op.Call {
				ret = min(ret, t)
			}
		}
		ops[i].Return = ret
	}
	return ops
}

// Result is a check's outcome.
type Result struct {
	Outcome porcupine.CheckResult
	// Operations is the history's length; Unbounded how many of them are
	// writes of unknown outcome left pending to infinity (each makes the
	// check costlier); Took how long the check took.
	Operations, Unbounded int
	Took                  time.Duration
	// Visualization is the HTML file of the history and its longest
	// linearizations, written when the outcome is not Ok, beside the
	// history itself (history.jsonl).
	Visualization string
	// Stale describes a few reads that are stale in any order of the
	// history (see StaleReads), when the outcome is not Ok.
	Stale []string
}

// Check checks the history within timeout (0: no limit; a check that
// runs out answers Unknown) and, unless it is linearizable, writes
// porcupine's visualization into dir (created if needed).
func (r *Recorder) Check(timeout time.Duration, dir string) (Result, error) {
	return CheckHistory(r.Operations(), timeout, dir)
}

// CheckHistory checks a history, as Recorder.Check does.
func CheckHistory(ops []porcupine.Operation, timeout time.Duration, dir string) (Result, error) {
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	model := Model()
	start := time.Now()
	outcome, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	res := Result{Outcome: outcome, Operations: len(ops), Took: time.Since(start)}
	var last int64
	for _, op := range ops {
		if !op.Output.(Output).Unknown {
			last = max(last, op.Return)
		}
	}
	for _, op := range ops {
		if op.Output.(Output).Unknown && op.Return > last {
			res.Unbounded++
		}
	}
	if outcome == porcupine.Ok {
		return res, nil
	}
	res.Stale = StaleReads(ops, 5)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	res.Visualization = filepath.Join(dir, "linearizability.html")
	if err := porcupine.VisualizePath(model, info, res.Visualization); err != nil {
		return res, fmt.Errorf("writing the visualization: %w", err)
	}
	return res, WriteHistory(filepath.Join(dir, "history.jsonl"), ops)
}

// WriteHistory writes a history to path, one operation (JSON) a line, to
// check again or study; ReadHistory reads it back.
func WriteHistory(path string, ops []porcupine.Operation) error {
	var b strings.Builder
	for _, op := range ops {
		line, err := json.Marshal(op)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// ReadHistory reads a history WriteHistory wrote.
func ReadHistory(path string) ([]porcupine.Operation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ops []porcupine.Operation
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var op struct {
			ClientId int
			Input    Input
			Call     int64
			Output   Output
			Return   int64
		}
		if err := json.Unmarshal([]byte(line), &op); err != nil {
			return nil, err
		}
		ops = append(ops, porcupine.Operation{ClientId: op.ClientId, Input: op.Input, Call: op.Call, Output: op.Output, Return: op.Return})
	}
	return ops, nil
}
