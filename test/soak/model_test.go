package soak

import (
	"fmt"
	"sort"
	"sync"
)

// absent is the value of an object that does not exist.
const absent = "<absent>"

// expectation is what the writers' answers say about one object: the
// values (spec.name, or absent) it may have at the target now.
type expectation struct {
	candidates map[string]bool
}

func (e expectation) certain() (string, bool) {
	if len(e.candidates) != 1 {
		return "", false
	}
	for v := range e.candidates {
		return v, true
	}
	return "", false
}

// outcome is how a write was answered.
type outcome int

const (
	acknowledged outcome = iota // 2xx: it happened
	failed                      // a Status that says it did not happen
	unknown                     // it may or may not have happened
)

// model is the writers' record of what the target must hold.
type model struct {
	mu      sync.Mutex
	objects map[string]expectation
	counts  [3]int
	unknown []string
}

// unknownNames are the objects written with an unknown outcome.
func (m *model) unknownNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.unknown...)
}

func newModel() *model { return &model{objects: map[string]expectation{}} }

// record notes that a write moving name from value before to value after
// was answered with o.
func (m *model) record(name, before, after string, o outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[o]++
	switch o {
	case acknowledged:
		m.objects[name] = expectation{candidates: map[string]bool{after: true}}
	case unknown:
		m.unknown = append(m.unknown, name)
		m.objects[name] = expectation{candidates: map[string]bool{before: true, after: true}}
	case failed:
		if _, ok := m.objects[name]; !ok {
			m.objects[name] = expectation{candidates: map[string]bool{before: true}}
		}
	}
}

// pick returns one of the writer's objects that certainly exists, with
// its value, or false.
func (m *model) pick(prefix string, choose func(n int) int) (string, string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name, e := range m.objects {
		if v, ok := e.certain(); ok && v != absent && len(name) > len(prefix) && name[:len(prefix)] == prefix {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", "", false
	}
	sort.Strings(names)
	name := names[choose(len(names))]
	v, _ := m.objects[name].certain()
	return name, v, true
}

// check compares the target's objects (name -> spec.name) with the
// model: every acknowledged write is there, and everything there was
// written by an acknowledged or unknown write.
func (m *model) check(atTarget map[string]string) (lost, ghosts []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, e := range m.objects {
		got, ok := atTarget[name]
		if !ok {
			got = absent
		}
		if !e.candidates[got] {
			lost = append(lost, fmt.Sprintf("%s is %q at the target, the answers allow %v", name, got, keys(e.candidates)))
		}
	}
	for name := range atTarget {
		if _, ok := m.objects[name]; !ok {
			ghosts = append(ghosts, name)
		}
	}
	sort.Strings(lost)
	sort.Strings(ghosts)
	return lost, ghosts
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
