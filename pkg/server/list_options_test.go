package server

import (
	"net/url"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
)

// A watch of one object sees that object only; a field selector naming
// another object is refused, as by kube-apiserver.
func TestSelectName(t *testing.T) {
	for _, c := range []struct {
		query, name string
		want        string // the resulting field selector; "" with bad
		bad         bool
	}{
		{query: "", name: "", want: ""},
		{query: "", name: "x", want: "metadata.name=x"},
		{query: "fieldSelector=metadata.name%3Dx", name: "x", want: "metadata.name=x"},
		{query: "fieldSelector=metadata.name%3Dy", name: "x", bad: true},
		{query: "fieldSelector=metadata.namespace%3Dns", name: "x", bad: true},
	} {
		q, _ := url.ParseQuery(c.query)
		opts, err := parseReadOptions(q, true)
		if err != nil {
			t.Fatal(err)
		}
		err = opts.selectName(c.name)
		if c.bad {
			if !apierrors.IsBadRequest(err) {
				t.Errorf("%q, name %q: %v, want 400", c.query, c.name, err)
			}
			continue
		}
		if err != nil || opts.fields.String() != c.want {
			t.Errorf("%q, name %q: selector %q, %v; want %q", c.query, c.name, opts.fields.String(), err, c.want)
		}
		if c.name != "" && (opts.fields.Matches(fields.Set{"metadata.name": "other"}) || !opts.fields.Matches(fields.Set{"metadata.name": c.name})) {
			t.Errorf("%q, name %q: the selector does not select exactly %s", c.query, c.name, c.name)
		}
	}
}
