package server

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestOpenAPIIndexEntry: a proxied group/version's entry is the target's,
// hash included; one the target's index does not list (yet), or an index
// that could not be read, gets an entry without a hash, so the client's
// aggregator routes the group/version's document to crproxy whenever it
// read the index.
func TestOpenAPIIndexEntry(t *testing.T) {
	gv := schema.GroupVersion{Group: "example.com", Version: "v1"}
	index := []byte(`{"paths":{
		"apis/example.com/v1":{"serverRelativeURL":"/openapi/v3/apis/example.com/v1?hash=ABC"},
		"apis/other.io/v1":{"serverRelativeURL":"/openapi/v3/apis/other.io/v1?hash=DEF"}}}`)
	unhashed := map[string]any{"serverRelativeURL": "/openapi/v3/apis/example.com/v1"}
	for _, c := range []struct {
		what  string
		index []byte
		want  any
	}{
		{"listed", index, map[string]any{"serverRelativeURL": "/openapi/v3/apis/example.com/v1?hash=ABC"}},
		{"not listed yet", []byte(`{"paths":{"apis/other.io/v1":{"serverRelativeURL":"/openapi/v3/apis/other.io/v1?hash=DEF"}}}`), unhashed},
		{"no index", nil, unhashed},
		{"not an index", []byte("<html>"), unhashed},
	} {
		key, entry := openAPIIndexEntry(c.index, gv)
		if key != "apis/example.com/v1" || !reflect.DeepEqual(entry, c.want) {
			t.Errorf("%s: %s %v, want apis/example.com/v1 %v", c.what, key, entry, c.want)
		}
	}
}
