package store

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	kjson "sigs.k8s.io/json"
)

// Object is one stored object: the few metadata fields the store needs to
// index, order, filter and version it, and the object's JSON exactly as the
// mirror encoded it. The store never re-encodes JSON: a get or list copies
// these bytes.
//
// An Object is immutable once handed to the store, and everything the store
// returns is shared with every other reader: never modify an Object, its
// Labels or its JSON.
type Object struct {
	// Namespace is "" for a cluster-scoped object.
	Namespace string
	Name      string
	UID       string
	// ResourceVersion is metadata.resourceVersion as a number.
	ResourceVersion uint64
	Labels          map[string]string
	// JSON is the whole object.
	JSON []byte
	// labelSignature is Labels' (LabelSignature); 0 when not built.
	labelSignature LabelSignature
}

// objectMeta is the part of an object's metadata NewObject decodes.
type objectMeta struct {
	Namespace       string            `json:"namespace"`
	Name            string            `json:"name"`
	UID             string            `json:"uid"`
	ResourceVersion string            `json:"resourceVersion"`
	Labels          map[string]string `json:"labels"`
}

// NewObject builds an Object from an object's JSON, decoding only
// metadata.namespace, name, uid, resourceVersion and labels (field names are
// case-sensitive, as in the kube-apiserver). The whole document is checked
// to be valid JSON, so malformed input is an error, never a panic; the rest
// of it is skipped, not decoded. The object must have a metadata.name;
// metadata.resourceVersion, when present, must be a decimal number (absent,
// it is 0). json is kept, not copied.
func NewObject(json []byte) (*Object, error) {
	if !stdjson.Valid(json) {
		var v any
		err := kjson.UnmarshalCaseSensitivePreserveInts(json, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, fmt.Errorf("decode object metadata: %w", err)
	}
	span, found, err := findMetadata(json)
	switch {
	case err != nil:
		return nil, fmt.Errorf("decode object metadata: %w", err)
	case !found:
		return nil, errors.New("decode object metadata: the object has no metadata")
	}
	var md objectMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(span, &md); err != nil {
		return nil, fmt.Errorf("decode object metadata: %w", err)
	}
	if md.Name == "" {
		return nil, errors.New("decode object metadata: the object has no metadata.name")
	}
	var rv uint64
	if md.ResourceVersion != "" {
		var err error
		rv, err = strconv.ParseUint(md.ResourceVersion, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode object metadata: metadata.resourceVersion %q is not a decimal number", md.ResourceVersion)
		}
	}
	return &Object{
		Namespace:       md.Namespace,
		Name:            md.Name,
		UID:             md.UID,
		ResourceVersion: rv,
		Labels:          md.Labels,
		JSON:            json,
		labelSignature:  labelSignature(md.Labels),
	}, nil
}

// Key returns "namespace/name" ("/name" for a cluster-scoped object): the
// object's key in the bbolt file. Keys sort in the order of Snapshot.Ascend.
func (o *Object) Key() string { return o.Namespace + "/" + o.Name }

// String returns the key and resourceVersion, for logs.
func (o *Object) String() string {
	if o == nil {
		return "<nil>"
	}
	return o.Key() + "@" + strconv.FormatUint(o.ResourceVersion, 10)
}

// validate checks what the store relies on.
func (o *Object) validate() error {
	switch {
	case o == nil:
		return errors.New("nil object")
	case o.Name == "":
		return errors.New("object has no name")
	case strings.Contains(o.Name, "/") || strings.Contains(o.Namespace, "/"):
		return fmt.Errorf("object %s: namespace and name may not contain '/'", o.Key())
	}
	return nil
}

// compareKeys orders (namespace, name) pairs as the strings
// namespace+"/"+name compare: the order of the kube-apiserver's etcd keys,
// so lists come out in the order the target would give them. Objects of one
// namespace are contiguous. It does not allocate.
func compareKeys(ans, an, bns, bn string) int {
	if ans == bns {
		return strings.Compare(an, bn)
	}
	n := min(len(ans), len(bns))
	if c := strings.Compare(ans[:n], bns[:n]); c != 0 {
		return c
	}
	// One namespace is a proper prefix of the other: the shorter one is
	// followed by '/', the longer by its next byte.
	var x, y byte = '/', '/'
	if len(ans) > n {
		x = ans[n]
	} else {
		y = bns[n]
	}
	if x != y {
		if x < y {
			return -1
		}
		return 1
	}
	// A '/' inside a namespace (never valid in Kubernetes): compare the
	// keys themselves.
	return strings.Compare(ans+"/"+an, bns+"/"+bn)
}

// lessObject is the btree order.
func lessObject(a, b *Object) bool {
	return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) < 0
}

// WithResourceVersion returns a copy of o whose ResourceVersion is rv and
// whose JSON has metadata.resourceVersion set to rv, as the kube-apiserver
// reports a deleted object (the store does so for deletions a relist finds;
// a server does so when a change moves an object out of a watcher's
// selection). The JSON is spliced, not re-encoded, and o is unchanged. When
// the JSON has no metadata.resourceVersion string to replace, the copy
// keeps o's JSON and ok is false.
func (o *Object) WithResourceVersion(rv uint64) (out *Object, ok bool) {
	c := *o
	c.ResourceVersion = rv
	start, end, found := findMetadataResourceVersion(o.JSON)
	if !found {
		return &c, false
	}
	val := strconv.AppendUint([]byte{'"'}, rv, 10)
	val = append(val, '"')
	buf := make([]byte, 0, len(o.JSON)-(end-start)+len(val))
	buf = append(buf, o.JSON[:start]...)
	buf = append(buf, val...)
	buf = append(buf, o.JSON[end:]...)
	c.JSON = buf
	return &c, true
}

// Metadata returns the JSON of the object's metadata (a slice of o.JSON,
// shared: never modify it), found by scanning, not decoding, so a
// metadata-only read costs a pass over the bytes. ok is false when the
// object has no metadata, which NewObject never accepts.
func (o *Object) Metadata() (span []byte, ok bool) {
	return ObjectMetadata(o.JSON)
}

// ObjectMetadata is Object.Metadata for an object's JSON that is not (or
// not yet) an Object, such as a deletion rewritten with a new
// resourceVersion. Invalid JSON is not found.
func ObjectMetadata(json []byte) (span []byte, ok bool) {
	span, ok, err := findMetadata(json)
	return span, ok && err == nil
}

// findMetadata returns the value of the top-level "metadata" member (the
// last one, as the decoder would) of a valid JSON document. A document that
// is not an object is an error; a "metadata" that is null is not found.
func findMetadata(b []byte) (span []byte, found bool, err error) {
	s := jsonScanner{b: b}
	s.ws()
	if s.peek() != '{' {
		return nil, false, errors.New("not a JSON object")
	}
	s.members(func(key string) bool {
		if key != "metadata" {
			return false
		}
		start := s.i
		s.skipValue()
		span, found = b[start:s.i], true
		if string(span) == "null" {
			span, found = nil, false
		}
		return true
	})
	if s.err != nil {
		return nil, false, s.err
	}
	return span, found, nil
}

// findMetadataResourceVersion returns the span of the string value of
// metadata.resourceVersion (quotes included) in a valid JSON object. Like
// the decoder, it takes the last of duplicate keys.
func findMetadataResourceVersion(b []byte) (start, end int, ok bool) {
	s := jsonScanner{b: b}
	var found bool
	s.members(func(key string) bool {
		if key != "metadata" || s.peek() != '{' {
			return false
		}
		found = false
		s.members(func(key string) bool {
			if key != "resourceVersion" || s.peek() != '"' {
				return false
			}
			start = s.i
			s.skipString()
			end = s.i
			found = true
			return true
		})
		return true
	})
	return start, end, found && s.err == nil
}

// jsonScanner walks a JSON document without decoding it. It is only used on
// documents NewObject already validated, but it never panics on bad input:
// it stops with err set.
type jsonScanner struct {
	b   []byte
	i   int
	err error
}

var errScan = errors.New("malformed JSON")

func (s *jsonScanner) peek() byte {
	if s.i >= len(s.b) {
		s.err = errScan
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// members walks the members of the object at the cursor. For each member it
// calls fn with the key, the cursor on the value; fn either consumes the
// value and returns true, or returns false (having consumed nothing) and
// the value is skipped.
func (s *jsonScanner) members(fn func(key string) bool) {
	s.ws()
	if s.peek() != '{' {
		s.err = errScan
		return
	}
	s.i++
	for s.err == nil {
		s.ws()
		switch s.peek() {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		case '"':
		default:
			s.err = errScan
			return
		}
		kstart := s.i
		s.skipString()
		if s.err != nil {
			return
		}
		key := string(s.b[kstart+1 : s.i-1])
		if strings.ContainsRune(key, '\\') {
			if u, err := strconv.Unquote(string(s.b[kstart:s.i])); err == nil {
				key = u
			}
		}
		s.ws()
		if s.peek() != ':' {
			s.err = errScan
			return
		}
		s.i++
		s.ws()
		save := s.i
		if !fn(key) && s.err == nil {
			s.i = save
			s.skipValue()
		}
	}
}

func (s *jsonScanner) skipString() {
	if s.peek() != '"' {
		s.err = errScan
		return
	}
	open := s.i
	for from := s.i + 1; ; {
		j := bytes.IndexByte(s.b[from:], '"')
		if j < 0 {
			s.err = errScan
			return
		}
		end := from + j
		// The quote is escaped when an odd number of backslashes
		// precede it.
		bs := 0
		for k := end - 1; k > open && s.b[k] == '\\'; k-- {
			bs++
		}
		from = end + 1
		if bs%2 == 0 {
			s.i = from
			return
		}
	}
}

func (s *jsonScanner) skipValue() {
	s.ws()
	switch s.peek() {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) && s.err == nil {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
		s.err = errScan
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return
			}
			s.i++
		}
	}
}
