package store

import (
	"fmt"
	"net/url"
	"strings"
)

// Key names one cache: the objects of one resource of one target. The
// store holds one Cache per Key and one bbolt bucket per Key.
type Key struct {
	Target   string
	Group    string
	Version  string
	Resource string
}

// String returns "target/group/version/resource", each part path-escaped
// (so a part can never contain the separator); it is also the name of the
// key's bucket in the bbolt file.
func (k Key) String() string {
	return url.PathEscape(k.Target) + "/" + url.PathEscape(k.Group) + "/" +
		url.PathEscape(k.Version) + "/" + url.PathEscape(k.Resource)
}

// parseKey is the inverse of Key.String.
func parseKey(s string) (Key, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return Key{}, fmt.Errorf("bucket name %q is not target/group/version/resource", s)
	}
	var out [4]string
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return Key{}, fmt.Errorf("bucket name %q: %w", s, err)
		}
		out[i] = u
	}
	return Key{Target: out[0], Group: out[1], Version: out[2], Resource: out[3]}, nil
}
