package writethrough

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
)

// The objects of the verb tests: one of this client's, one of another
// client's (team-b), each with spec.text "a".
const (
	mineObject   = `{"metadata":{"name":"mine","namespace":"default","labels":{"vcluster.com/owner-vcluster":"client","vcluster.com/owner-project":"default"}},"spec":{"text":"a"}}`
	othersObject = `{"metadata":{"name":"others","namespace":"default","labels":{"vcluster.com/owner-vcluster":"team-b","vcluster.com/owner-project":"default"}},"spec":{"text":"a"}}`
)

// verbRequest is a request of verb to the object name that sets
// spec.text to "b" (or deletes it).
func verbRequest(verb, name string) *Request {
	path := "/apis/example.com/v1/namespaces/default/myresources"
	object := `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"` + name + `"},"spec":{"text":"b"}}`
	req := &Request{Namespace: "default", Name: name, Path: path + "/" + name, Query: url.Values{}}
	switch verb {
	case "create":
		req.Verb, req.Name, req.Path, req.ContentType, req.Body = "create", "", path, "application/json", []byte(object)
	case "update":
		req.Verb, req.ContentType, req.Body = "update", "application/json", []byte(object)
	case "merge":
		req.Verb, req.ContentType, req.Body = "patch", "application/merge-patch+json", []byte(`{"spec":{"text":"b"}}`)
	case "json":
		req.Verb, req.ContentType, req.Body = "patch", "application/json-patch+json", []byte(`[{"op":"replace","path":"/spec/text","value":"b"}]`)
	case "apply":
		req.Verb, req.ContentType, req.Body = "patch", "application/apply-patch+yaml", []byte(object)
		req.Query.Set("fieldManager", "test")
	case "status":
		req.Verb, req.Subresource, req.Path, req.ContentType = "update", "status", req.Path+"/status", "application/json"
		req.Body = []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"` + name + `"},"spec":{"text":"b"},"status":{"ready":true}}`)
	case "scale":
		req.Verb, req.Subresource, req.Path = "get", "scale", req.Path+"/scale"
	case "scale update":
		req.Verb, req.Subresource, req.Path, req.ContentType = "update", "scale", req.Path+"/scale", "application/json"
		req.Body = []byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"` + name + `","namespace":"default"},"spec":{"replicas":3}}`)
	case "scale patch":
		req.Verb, req.Subresource, req.Path, req.ContentType = "patch", "scale", req.Path+"/scale", "application/merge-patch+json"
		req.Body = []byte(`{"spec":{"replicas":3}}`)
	case "delete":
		req.Verb = "delete"
	case "deletecollection":
		req.Verb, req.Name, req.Path = "deletecollection", "", path
	}
	return req
}

// codeOf is the HTTP status of a write's outcome.
func codeOf(resp *Response, err error) int {
	if err != nil {
		return faketarget.Code(err)
	}
	return resp.Code
}

// after describes the target's object: "gone", or spec.text/owner, with
// /replicas once a scale write set them.
func after(target *faketarget.Server, name string) string {
	o := target.Object("default", name)
	if o == nil {
		return "gone"
	}
	spec, _ := o["spec"].(map[string]any)
	meta, _ := o["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	if replicas, ok := spec["replicas"]; ok {
		return fmt.Sprintf("%v/%v/%v", spec["text"], labels["vcluster.com/owner-vcluster"], replicas)
	}
	return fmt.Sprintf("%v/%v", spec["text"], labels["vcluster.com/owner-vcluster"])
}

// Every verb in each access mode, on this client's object, another
// client's and a missing one: the answer, what the target holds after,
// and how many requests reached the target (an object the mirror holds
// costs its write alone).
func TestVerbsByAccessMode(t *testing.T) {
	owned, all := config.AccessOwned, config.AccessAll
	for _, c := range []struct {
		mode     config.AccessMode
		verb     string
		object   string // mine, others, missing
		code     int
		after    string
		requests int
	}{
		{owned, "create", "missing", 201, "b/client", 1},
		{owned, "create", "others", 409, "a/team-b", 1},
		{owned, "update", "mine", 200, "b/client", 1},
		{owned, "update", "others", 404, "a/team-b", 1}, // the check asks the target: an owned mirror holds only this client's
		{owned, "update", "missing", 404, "gone", 1},    // the ownership check asks the target
		{owned, "merge", "mine", 200, "b/client", 1},
		{owned, "merge", "others", 404, "a/team-b", 1},
		{owned, "merge", "missing", 404, "gone", 1},
		{owned, "json", "mine", 200, "b/client", 1},
		{owned, "json", "others", 404, "a/team-b", 1},
		{owned, "json", "missing", 404, "gone", 1},
		{owned, "apply", "mine", 200, "b/client", 1},
		{owned, "apply", "others", 404, "a/team-b", 1},
		{owned, "apply", "missing", 201, "b/client", 2}, // the check (which finds none), then the create-only apply
		{owned, "delete", "mine", 200, "gone", 1},
		{owned, "delete", "others", 404, "a/team-b", 1},
		{owned, "delete", "missing", 404, "gone", 1},
		{owned, "status", "mine", 200, "a/client", 1}, // a status write leaves spec
		{owned, "status", "others", 404, "a/team-b", 1},
		{owned, "scale", "mine", 200, "a/client", 1},
		{owned, "scale", "others", 404, "a/team-b", 1},
		{owned, "scale update", "mine", 200, "a/client/3", 1},
		{owned, "scale update", "others", 404, "a/team-b", 1},
		{owned, "scale update", "missing", 404, "gone", 1},
		{owned, "scale patch", "mine", 200, "a/client/3", 1},
		{owned, "scale patch", "others", 404, "a/team-b", 1},
		{owned, "scale patch", "missing", 404, "gone", 1},
		{owned, "deletecollection", "mine", 200, "gone", 1}, // with the owner selector
		{owned, "deletecollection", "others", 200, "a/team-b", 1},

		{all, "create", "missing", 201, "b/client", 1},
		{all, "create", "mine", 409, "a/client", 1},
		{all, "update", "mine", 200, "b/client", 1},
		{all, "update", "others", 200, "b/team-b", 1}, // the owner stays the creator
		{all, "update", "missing", 404, "gone", 2},    // the lookup for its owners, then the target's 404
		{all, "merge", "others", 200, "b/team-b", 1},
		{all, "merge", "missing", 404, "gone", 2}, // the lookup for its owners, then the target's 404
		{all, "json", "others", 200, "b/team-b", 1},
		{all, "json", "missing", 404, "gone", 1},
		{all, "apply", "others", 200, "b/team-b", 1},
		{all, "apply", "missing", 201, "b/client", 2},
		{all, "delete", "others", 200, "gone", 1},
		{all, "delete", "missing", 404, "gone", 1},
		{all, "status", "others", 200, "a/team-b", 1},
		{all, "scale", "others", 200, "a/team-b", 1},
		{all, "scale update", "others", 200, "a/team-b/3", 1},
		{all, "scale update", "missing", 404, "gone", 1},
		{all, "scale patch", "others", 200, "a/team-b/3", 1},
		{all, "scale patch", "missing", 404, "gone", 1},
		{all, "deletecollection", "others", 200, "gone", 1},
	} {
		t.Run(fmt.Sprintf("%s %s of %s", c.mode, c.verb, c.object), func(t *testing.T) {
			target := faketarget.New(t)
			target.Add(mineObject)
			target.Add(othersObject)
			res := target.Resource(c.mode)
			w := New(Options{Client: config.Client{Name: "client"}})
			name := c.object
			if name == "missing" {
				name = "new"
			}
			req := verbRequest(c.verb, name)
			req.Resource = res
			resp, err := w.Write(context.Background(), req)
			if got := codeOf(resp, err); got != c.code {
				t.Fatalf("answer %d (%v), want %d", got, err, c.code)
			}
			if got := after(target, name); got != c.after {
				t.Errorf("the target holds %s, want %s", got, c.after)
			}
			if got := target.Requests(); len(got) != c.requests {
				t.Errorf("%d requests reached the target, want %d: %v", len(got), c.requests, got)
			}
		})
	}
}

// Bad input is refused before anything is read or written: not even the
// ownership check's read of an object the mirror does not hold reaches
// the target.
func TestBadInputReachesNothing(t *testing.T) {
	for _, c := range []struct {
		name        string
		verb        string
		contentType string
		body        string
		code        int
		query       string
	}{
		{"create that is not JSON", "create", "application/json", `{"kind":`, 400, ""},
		{"update that is not JSON", "update", "application/json", `{"kind":`, 400, ""},
		{"update of another kind", "update", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new"}}`, 400, ""},
		{"merge patch that is not JSON", "patch", "application/merge-patch+json", `{"spec":`, 400, ""},
		{"merge patch that is not an object", "patch", "application/merge-patch+json", `[1]`, 400, ""},
		{"JSON patch that is not a list", "patch", "application/json-patch+json", `{"op":"add"}`, 400, ""},
		{"apply that is not YAML", "patch", "application/apply-patch+yaml", "a: [", 400, ""},
		{"patch of an unknown type", "patch", "application/strategic-merge-patch+json", `{}`, 415, ""},
		{"delete with malformed options", "delete", "application/json", `{"gracePeriodSeconds":"soon"}`, 400, ""},
		{"deletecollection with malformed options", "deletecollection", "application/json", `{"gracePeriodSeconds":"soon"}`, 400, ""},
		{"deletecollection with a malformed selector", "deletecollection", "", "", 400, "labelSelector=a%20in%20(b"},
	} {
		// Bad input is bad whatever the target's state: not a 503 while
		// it is unreachable, as a kube-apiserver whose etcd is down
		// still answers a malformed body 400.
		for _, down := range []bool{false, true} {
			name := c.name
			if down {
				name += ", target unreachable"
			}
			t.Run(name, func(t *testing.T) {
				target := faketarget.New(t)
				res := target.Resource(config.AccessOwned) // holds nothing: a check would read the target
				if down {
					res.Target.Connection.Observe(errors.New("connection refused"))
				}
				w := New(Options{Client: config.Client{Name: "client"}})
				var err error
				req := &Request{Resource: res, Verb: c.verb, Namespace: "default", Name: "new",
					Path: "/apis/example.com/v1/namespaces/default/myresources/new", Query: url.Values{},
					ContentType: c.contentType, Body: []byte(c.body)}
				if c.verb == "create" || c.verb == "deletecollection" {
					req.Name, req.Path = "", strings.TrimSuffix(req.Path, "/new")
				}
				if req.Query, err = url.ParseQuery(c.query); err != nil {
					t.Fatal(err)
				}
				resp, err := w.Write(context.Background(), req)
				if got := codeOf(resp, err); got != c.code {
					t.Fatalf("answer %d (%v), want %d", got, err, c.code)
				}
				if got := target.Requests(); len(got) != 0 {
					t.Errorf("requests reached the target: %v", got)
				}
			})
		}
	}
}

// A valid request while the target is known unreachable answers 503 with
// Retry-After and says nothing was written; nothing reaches the target
// (writes are not queued), whatever the verb.
func TestValidInputWhileTheTargetIsDown(t *testing.T) {
	for _, verb := range []string{"create", "update", "merge", "json", "apply", "status", "scale", "delete", "deletecollection"} {
		t.Run(verb, func(t *testing.T) {
			target := faketarget.New(t)
			target.Add(mineObject)
			res := target.Resource(config.AccessOwned)
			res.Target.Connection.Observe(errors.New("connection refused"))
			name := "mine"
			if verb == "create" {
				name = "new"
			}
			req := verbRequest(verb, name)
			req.Resource = res
			resp, err := New(Options{Client: config.Client{Name: "client"}}).Write(context.Background(), req)
			if got := codeOf(resp, err); got != http.StatusServiceUnavailable {
				t.Fatalf("answer %d (%v), want 503", got, err)
			}
			want := "nothing was written"
			if verb == "scale" {
				want = "the scale subresource is read from the target"
			}
			if !strings.Contains(err.Error(), "target default/target unreachable since") || !strings.Contains(err.Error(), want) {
				t.Errorf("message %q, want the target unreachable and %q", err.Error(), want)
			}
			if delay, ok := apierrors.SuggestsClientDelay(err); !ok || delay <= 0 {
				t.Errorf("Retry-After %d, %v: want one", delay, ok)
			}
			if got := target.Requests(); len(got) != 0 {
				t.Errorf("requests reached the target: %v", got)
			}
			if got := after(target, "mine"); got != "a/client" {
				t.Errorf("the target holds %s, want a/client", got)
			}
		})
	}
}

// The writes crproxy makes conditional retry on a conflict from the object
// read anew, and hold only on the checked object: a resourceVersion the
// caller sets is the caller's condition, not retried.
func TestConditionsAndRetries(t *testing.T) {
	for _, c := range []struct {
		name  string
		req   func(*Request)
		code  int
		after string
		sent  []string // the writes that reached the target
	}{
		{"update from a stale mirror is retried", nil, 200, "b/client",
			[]string{"PUT", "PUT"}},
		{"update at the caller's stale version is the caller's conflict", func(r *Request) {
			r.Body = []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"mine","resourceVersion":"11"},"spec":{"text":"b"}}`)
		}, 409, "c/client", []string{"PUT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := faketarget.New(t)
			target.Add(mineObject)
			res := target.Resource(config.AccessAll) // the mirror holds version 11
			target.Add(strings.Replace(mineObject, `"a"`, `"c"`, 1))
			w := New(Options{Client: config.Client{Name: "client"}})
			req := verbRequest("update", "mine")
			req.Resource = res
			if c.req != nil {
				c.req(req)
			}
			resp, err := w.Write(context.Background(), req)
			if got := codeOf(resp, err); got != c.code {
				t.Fatalf("answer %d (%v), want %d", got, err, c.code)
			}
			if got := after(target, "mine"); got != c.after {
				t.Errorf("the target holds %s, want %s", got, c.after)
			}
			var sent []string
			for _, r := range target.Writes() {
				sent = append(sent, r.Method)
			}
			if fmt.Sprint(sent) != fmt.Sprint(c.sent) {
				t.Errorf("writes %v, want %v", sent, c.sent)
			}
		})
	}
}

// A delete with propagationPolicy Foreground gives the object crproxy's
// name of the GC finalizer first, then deletes it conditional on its UID.
func TestForegroundDeleteAddsTheFinalizerFirst(t *testing.T) {
	target := faketarget.New(t)
	target.Add(mineObject)
	res := target.Resource(config.AccessOwned)
	w := New(Options{Client: config.Client{Name: "client"}})
	req := verbRequest("delete", "mine")
	req.Resource = res
	req.ContentType, req.Body = "application/json", []byte(`{"propagationPolicy":"Foreground"}`)
	resp, err := w.Write(context.Background(), req)
	if got := codeOf(resp, err); got != http.StatusOK {
		t.Fatalf("answer %d (%v), want 200", got, err)
	}
	var sent []string
	for _, r := range target.Writes() {
		sent = append(sent, r.Method)
	}
	if fmt.Sprint(sent) != "[PATCH DELETE]" {
		t.Fatalf("writes %v, want [PATCH DELETE]", sent)
	}
	meta, _ := target.Object("default", "mine")["metadata"].(map[string]any)
	if meta["deletionTimestamp"] == nil || fmt.Sprint(meta["finalizers"]) != "["+mirror.ForegroundFinalizer+"]" {
		t.Errorf("the target's object after the delete: %v", meta)
	}
}
