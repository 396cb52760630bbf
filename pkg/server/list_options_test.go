package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
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

// A list or watch with a label selector answers exactly what the selector
// matches: the signature check before it only skips objects the selector
// cannot match, for every operator, on objects built as the mirror builds
// them.
func TestLabelSelectionIsTheSelectors(t *testing.T) {
	labelSets := []map[string]string{
		nil,
		{"app": "web"},
		{"app": "db", "tier": "1"},
		{"app": "web", "tier": "3", "crproxy.dev/owner": "client"},
		{"tier": "10"},
		{"app": ""},
	}
	selectors := []string{
		"app=web", "app==web", "app!=web", "app in (web,db)", "app notin (web)",
		"app", "!app", "tier>2", "tier<5", "app=web,tier>2", "app=", "app in (x,y)",
		"crproxy.dev/owner=client,app", "app=web,app=db",
	}
	var objects []*store.Object
	for i, l := range labelSets {
		data, _ := json.Marshal(map[string]any{"apiVersion": "example.com/v1", "kind": "MyResource",
			"metadata": map[string]any{"name": fmt.Sprint("o", i), "namespace": "ns", "labels": l}})
		o, err := store.NewObject(data)
		if err != nil {
			t.Fatal(err)
		}
		objects = append(objects, o)
	}
	selected := 0
	for _, s := range selectors {
		opts, err := parseReadOptions(url.Values{"labelSelector": {s}}, false)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		sel, _ := labels.Parse(s)
		for _, o := range objects {
			want := sel.Matches(labels.Set(o.Labels))
			if got := opts.matches(o); got != want {
				t.Errorf("%q on %v: matches %v, the selector says %v", s, o.Labels, got, want)
			}
			if want {
				selected++
			}
		}
	}
	if selected == 0 {
		t.Fatal("no selector matched anything: the test checks nothing")
	}
}

// The query's resourceVersion parameters reach the mirror as they are
// (mirror.Read): the server decides nothing about freshness.
func TestReadOfQuery(t *testing.T) {
	yes := true
	token := encodeContinue(42, "default", "a")
	for _, c := range []struct {
		query string
		watch bool
		want  mirror.Read
	}{
		{"", false, mirror.Read{Freshness: mirror.Freshness{Consistent: true}}},
		{"resourceVersion=0", false, mirror.Read{}},
		{"resourceVersion=17", false, mirror.Read{Freshness: mirror.Freshness{NotOlderThan: 17}}},
		{"resourceVersion=17&resourceVersionMatch=NotOlderThan", false, mirror.Read{Freshness: mirror.Freshness{NotOlderThan: 17}}},
		{"resourceVersion=17&resourceVersionMatch=Exact", false, mirror.Read{Freshness: mirror.Freshness{NotOlderThan: 17}, Exact: true}},
		{"limit=5&continue=" + token, false, mirror.Read{Freshness: mirror.Freshness{Consistent: true}, Continue: 42}},
		// The kube-apiserver's legacy exact match: a first page at N.
		{"resourceVersion=17&limit=5", false, mirror.Read{Freshness: mirror.Freshness{NotOlderThan: 17}, Exact: true}},
		{"resourceVersion=17&limit=5&resourceVersionMatch=NotOlderThan", false, mirror.Read{Freshness: mirror.Freshness{NotOlderThan: 17}}},
		{"resourceVersion=0&limit=5", false, mirror.Read{}},
		{"labelSelector=a%3Db&fieldSelector=metadata.name%3Dx", false, mirror.Read{Freshness: mirror.Freshness{Consistent: true},
			Scope: mirror.Scope{Namespace: "default", LabelSelector: "a=b", FieldSelector: "metadata.name=x"}}},
		{"watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", true,
			mirror.Read{Freshness: mirror.Freshness{Consistent: true}, SendInitialEvents: &yes}},
		{"watch=1&resourceVersion=17", true, mirror.Read{Freshness: mirror.Freshness{NotOlderThan: 17}}},
	} {
		t.Run(c.query, func(t *testing.T) {
			q, _ := url.ParseQuery(c.query)
			opts, err := parseReadOptions(q, c.watch)
			if err != nil {
				t.Fatal(err)
			}
			got := opts.read(c.want.Scope.Namespace)
			if got.Scope.Matches == nil {
				t.Error("the scope has no Matches")
			}
			if (got.SendInitialEvents == nil) != (c.want.SendInitialEvents == nil) ||
				(got.SendInitialEvents != nil && *got.SendInitialEvents != *c.want.SendInitialEvents) {
				t.Errorf("sendInitialEvents %v, want %v", got.SendInitialEvents, c.want.SendInitialEvents)
			}
			got.Scope.Matches, got.SendInitialEvents, c.want.SendInitialEvents = nil, nil, nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", c.want) {
				t.Errorf("read %+v, want %+v", got, c.want)
			}
		})
	}
}
