package store

import (
	"fmt"
	"net/url"
	"strings"
)

// Key names one cache: the objects of one resource of one target, as one
// selection sees them. The store holds one Cache per Key and one bbolt
// bucket per Key.
type Key struct {
	Target   string
	Group    string
	Version  string
	Resource string
	// Selection fingerprints what the cache was filled with: the
	// target's address, the identity that read it and the label
	// selector (the client's objects, or all). A cache filled under one
	// selection is never served under another: a change of access mode
	// or identity names another Key.
	Selection string
}

// String returns "target/group/version/resource/selection", each part
// path-escaped (so a part can never contain the separator); it is also the
// name of the key's bucket in the bbolt file.
func (k Key) String() string {
	return url.PathEscape(k.Target) + "/" + url.PathEscape(k.Group) + "/" +
		url.PathEscape(k.Version) + "/" + url.PathEscape(k.Resource) + "/" + url.PathEscape(k.Selection)
}

// parseKey is the inverse of Key.String. A name of four parts (a file
// written before keys had a selection) has an empty Selection, which no
// mirror uses: its cache is forgotten, not served.
func parseKey(s string) (Key, error) {
	parts := strings.Split(s, "/")
	if len(parts) == 4 {
		parts = append(parts, "")
	}
	if len(parts) != 5 {
		return Key{}, fmt.Errorf("bucket name %q is not target/group/version/resource/selection", s)
	}
	var out [5]string
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return Key{}, fmt.Errorf("bucket name %q: %w", s, err)
		}
		out[i] = u
	}
	return Key{Target: out[0], Group: out[1], Version: out[2], Resource: out[3], Selection: out[4]}, nil
}
