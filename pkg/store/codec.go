package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// recordVersion is the first byte of every object record.
const recordVersion = 1

// A record is an object's value in its bucket (the key is
// "namespace/name"), built so that Open can rebuild the Object without
// parsing the JSON:
//
//	byte    recordVersion (1)
//	uvarint resourceVersion
//	uvarint len, bytes      uid
//	uvarint label count, then per label: uvarint len, key, uvarint len, value
//	bytes   the object's JSON, to the end of the value
func appendRecord(b []byte, o *Object) []byte {
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, o.ResourceVersion)
	b = appendString(b, o.UID)
	b = binary.AppendUvarint(b, uint64(len(o.Labels)))
	for k, v := range o.Labels {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return append(b, o.JSON...)
}

func recordSize(o *Object) int {
	n := 1 + binary.MaxVarintLen64*2 + len(o.UID) + binary.MaxVarintLen64
	for k, v := range o.Labels {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	return n + len(o.JSON)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errRecord = errors.New("malformed record")

// recordReader decodes a record; the first error sticks.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errRecord
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// decodeRecord rebuilds the object stored under key. Nothing of key or
// value is retained (bbolt's memory is only valid inside its transaction):
// strings and the JSON are copied. intern deduplicates namespaces and label
// strings, which repeat across objects.
func decodeRecord(key, value []byte, intern *interner) (*Object, error) {
	ns, name, ok := cutKey(key)
	if !ok || len(value) == 0 || value[0] != recordVersion {
		return nil, fmt.Errorf("%w under key %q", errRecord, key)
	}
	r := recordReader{b: value[1:]}
	o := &Object{Namespace: intern.string(ns), Name: string(name)}
	o.ResourceVersion = r.uvarint()
	o.UID = string(r.bytes())
	if n := r.uvarint(); n > 0 && r.err == nil {
		if n > uint64(len(r.b)) {
			return nil, fmt.Errorf("%w under key %q", errRecord, key)
		}
		pairs := make([][2][]byte, 0, n)
		for range n {
			k := r.bytes()
			v := r.bytes()
			if r.err != nil {
				break
			}
			pairs = append(pairs, [2][]byte{k, v})
		}
		if r.err == nil {
			o.Labels, o.labelSignature = intern.labels(pairs)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w under key %q", r.err, key)
	}
	o.JSON = append([]byte(nil), r.b...)
	return o, nil
}

// cutKey splits "namespace/name".
func cutKey(key []byte) (ns, name []byte, ok bool) {
	for i, c := range key {
		if c == '/' {
			return key[:i], key[i+1:], i+1 < len(key)
		}
	}
	return nil, nil, false
}

// interner shares equal strings, and equal label sets, during a load.
// Label maps are shared because Objects are immutable: in owned mode every
// object carries the same owner labels, and a map of two labels costs
// about 300 bytes, a quarter of a typical object's JSON (B5: 100,000
// objects).
type interner struct {
	m      map[string]string
	labelm map[string]labelSet
}

// labelSet is an interned label set and its signature.
type labelSet struct {
	labels    map[string]string
	signature LabelSignature
}

// labels returns the label set of pairs, shared with every equal set this
// interner has seen, and its signature.
func (in *interner) labels(pairs [][2][]byte) (map[string]string, LabelSignature) {
	slices.SortFunc(pairs, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
	var key []byte
	for _, p := range pairs {
		key = binary.AppendUvarint(key, uint64(len(p[0])))
		key = append(key, p[0]...)
		key = binary.AppendUvarint(key, uint64(len(p[1])))
		key = append(key, p[1]...)
	}
	if set, ok := in.labelm[string(key)]; ok {
		return set.labels, set.signature
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[in.string(p[0])] = in.string(p[1])
	}
	sig := labelSignature(m)
	if len(in.labelm) < 1<<16 {
		if in.labelm == nil {
			in.labelm = map[string]labelSet{}
		}
		in.labelm[string(key)] = labelSet{m, sig}
	}
	return m, sig
}

func (in *interner) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if len(in.m) >= 1<<16 {
		return string(b)
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	s := string(b)
	in.m[s] = s
	return s
}

// meta is the record "meta" of a cache's bucket.
type meta struct {
	ResourceVersion string `json:"resourceVersion"`
	ClusterUID      string `json:"clusterUID,omitempty"`
	// Synced is false for a cache that was Reset or created and has not
	// had a Replace since: its content is not a complete state.
	Synced bool `json:"synced"`
}

func encodeMeta(m meta) []byte {
	b, _ := json.Marshal(m)
	return b
}

func decodeMeta(b []byte) (rv uint64, m meta, err error) {
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, m, fmt.Errorf("meta record: %w", err)
	}
	if rv, err = strconv.ParseUint(m.ResourceVersion, 10, 64); err != nil {
		return 0, m, fmt.Errorf("meta record: resourceVersion %q: %w", m.ResourceVersion, err)
	}
	return rv, m, nil
}
