package mirror_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/warning"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// The consistent reads' decisions (resourceVersion ""), against a fake
// target: what the target holds when the read begins answers it, whatever
// the mirror held, and a target that cannot be asked leaves the mirror's
// state with a Warning.

const (
	mine   = `{"metadata":{"name":"mine","namespace":"default","labels":{"vcluster.com/owner-vcluster":"client","vcluster.com/owner-project":"default"}},"spec":{"text":"a"}}`
	others = `{"metadata":{"name":"others","namespace":"default","labels":{"vcluster.com/owner-vcluster":"team-b","vcluster.com/owner-project":"default"}},"spec":{"text":"a"}}`
)

// changed is o (as faketarget.Add returned it) with spec.text set, the same
// object at a new resourceVersion.
func changed(t *testing.T, o map[string]any, text string) string {
	t.Helper()
	o["spec"] = map[string]any{"text": text}
	delete(o["metadata"].(map[string]any), "resourceVersion")
	data, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// textOf is spec.text of a mirrored or target object.
func textOf(t *testing.T, o *store.Object) string {
	t.Helper()
	var v struct {
		Spec struct{ Text string } `json:"spec"`
	}
	if err := json.Unmarshal(o.JSON, &v); err != nil {
		t.Fatal(err)
	}
	return v.Spec.Text
}

func TestConsistentGet(t *testing.T) {
	for _, c := range []struct {
		name string
		// at changes the target after the mirror was filled.
		at       func(t *testing.T, target *faketarget.Server, stored map[string]any)
		down     bool
		code     int
		text     string // spec.text answered
		warning  string // in the Warnings, "" for none
		requests int    // that reached the target
	}{
		{name: "the mirror holds the target's version", code: 200, text: "a", requests: 1},
		{name: "the target changed it since: the target's version", code: 200, text: "b", requests: 1,
			at: func(t *testing.T, target *faketarget.Server, o map[string]any) { target.Add(changed(t, o, "b")) }},
		{name: "the target deleted it since: 404", code: 404, requests: 1,
			at: func(_ *testing.T, target *faketarget.Server, _ map[string]any) { target.Remove("default", "mine") }},
		{name: "another client's object at the target: 404", code: 404, requests: 1,
			at: func(_ *testing.T, target *faketarget.Server, _ map[string]any) {
				target.Remove("default", "mine")
				target.Add(strings.Replace(others, `"others"`, `"mine"`, 1))
			}},
		{name: "the target unreachable: the mirror's, warned, nothing asked", down: true, code: 200, text: "a",
			warning: "target default/target unreachable since", requests: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := faketarget.New(t)
			stored := target.Add(mine)
			res := target.Resource(config.AccessOwned)
			if c.at != nil {
				c.at(t, target, stored)
			}
			if c.down {
				res.Target.Connection.Observe(errors.New("connection refused"))
			}
			w := &faketarget.Warnings{}
			ctx := warning.WithWarningRecorder(context.Background(), w)
			o, err := res.Object(ctx, mirror.Read{Freshness: mirror.Freshness{Consistent: true}}, "default", "mine")
			if got := faketarget.Code(err); got != c.code {
				t.Fatalf("answer %d (%v), want %d", got, err, c.code)
			}
			if err == nil && textOf(t, o) != c.text {
				t.Errorf("spec.text %q, want %q", textOf(t, o), c.text)
			}
			if got := w.String(); (c.warning == "") != (got == "") || !strings.Contains(got, c.warning) {
				t.Errorf("warnings %q, want %q", got, c.warning)
			}
			if got := target.Requests(); len(got) != c.requests {
				t.Errorf("%d requests reached the target, want %d: %v", len(got), c.requests, got)
			}
		})
	}
}

// A target that answers with an error it cannot be read from leaves the
// mirror's object, with a Warning that the target did not answer.
func TestConsistentGetTargetFails(t *testing.T) {
	fail := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "etcd is gone", http.StatusInternalServerError)
	})
	res := faketarget.Mirrored(t, fail, config.AccessAll, `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"mine","namespace":"default","uid":"u1","resourceVersion":"11"},"spec":{"text":"a"}}`)
	w := &faketarget.Warnings{}
	ctx := warning.WithWarningRecorder(context.Background(), w)
	o, err := res.Object(ctx, mirror.Read{Freshness: mirror.Freshness{Consistent: true}}, "default", "mine")
	if err != nil {
		t.Fatal(err)
	}
	if textOf(t, o) != "a" {
		t.Errorf("spec.text %q, want the mirror's a", textOf(t, o))
	}
	if got := w.String(); !strings.Contains(got, "did not answer a consistent read") {
		t.Errorf("warnings %q, want the target's failure", got)
	}
}

// A target answering the version the mirror holds gets the mirror's own
// object back, whether its answer is the mirror's bytes (the target's
// encoding, as crproxy stored it from the watch; getAtTarget's byte
// comparison) or the same version written otherwise (its uid and
// resourceVersion comparison). Which of the two answered is not
// observable here: they differ in cost only.
func TestConsistentGetOfTheMirroredVersion(t *testing.T) {
	const stored = `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"mine","namespace":"default","resourceVersion":"11","uid":"u1"},"spec":{"text":"a"}}` + "\n"
	for _, c := range []struct{ name, answer string }{
		{"the mirror's bytes", stored},
		{"the same version in other bytes", strings.ReplaceAll(strings.TrimSpace(stored), ",", ", ")},
	} {
		t.Run(c.name, func(t *testing.T) {
			answer := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(c.answer))
			})
			res := faketarget.Mirrored(t, answer, config.AccessAll, stored)
			cached, _, _ := res.Cache.Get("default", "mine")
			o, err := res.Object(context.Background(), mirror.Read{Freshness: mirror.Freshness{Consistent: true}}, "default", "mine")
			if err != nil {
				t.Fatal(err)
			}
			if o != cached {
				t.Errorf("answered %s, want the mirror's own object", o.JSON)
			}
		})
	}
}

// A consistent list waits until the mirror reflects what the target held
// when the read began: an object the target has and the mirror does not
// yet is in the answer once the mirror's watch delivers it.
func TestConsistentListWaitsForTheMirror(t *testing.T) {
	target := faketarget.New(t)
	target.Add(mine)
	res := target.Resource(config.AccessOwned)
	added := target.Add(strings.Replace(mine, `"mine"`, `"new"`, 1))
	delivered := make(chan struct{})
	go func() {
		// The watch event, a moment after the read began.
		time.Sleep(100 * time.Millisecond)
		data, _ := json.Marshal(added)
		o, err := store.NewObject(data)
		if err == nil {
			err = res.Cache.Update(o)
		}
		if err != nil {
			t.Error(err)
		}
		close(delivered)
	}()
	w := &faketarget.Warnings{}
	ctx := warning.WithWarningRecorder(context.Background(), w)
	snap, err := res.List(ctx, mirror.Read{Freshness: mirror.Freshness{Consistent: true}, Scope: mirror.Scope{Namespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	// The list may answer between the cache's update and the close, so
	// what proves it waited is its content, not the channel.
	<-delivered
	var names []string
	snap.Ascend("default", "", "", func(o *store.Object) bool { names = append(names, o.Name); return true })
	if fmt.Sprint(names) != "[mine new]" {
		t.Errorf("listed %v, want [mine new]", names)
	}
	if w.String() != "" {
		t.Errorf("warnings %q, want none", w.String())
	}
	var lists int
	for _, r := range target.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/myresources") {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("%d lists reached the target, want 1: %v", lists, target.Requests())
	}
}

// A caller that gives up on a GET at the target (its context ends while
// the target has not answered) says nothing about the target: the target
// is not marked unreachable, which would answer every other reader from
// the mirror with a Warning. A GET that finds no target still marks it.
func TestReadAtTargetCallerGivingUpLeavesTheTargetUp(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { <-req.Context().Done() }))
	defer hang.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	resource := func(server string) *mirror.Resource {
		u, _ := url.Parse(server)
		r := mirror.NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"},
			metav1.APIResource{Name: "things", Kind: "Thing", Namespaced: true})
		r.Target = mirror.NewTargetAt("p/t", u, &http.Client{})
		return r
	}

	r := resource(hang.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.ReadAtTarget(ctx, "default", "one"); err == nil {
		t.Fatal("a GET whose caller gave up returned no error")
	}
	if _, down := r.Target.Connection.Down(); down {
		t.Error("a caller giving up marked the target unreachable")
	}

	r = resource(closed.URL)
	if _, err := r.ReadAtTarget(context.Background(), "default", "one"); err == nil {
		t.Fatal("a GET of a closed server returned no error")
	}
	if _, down := r.Target.Connection.Down(); !down {
		t.Error("a GET that found no target left it up")
	}
}
