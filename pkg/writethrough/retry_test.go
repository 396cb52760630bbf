package writethrough

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/store"
)

// rereadTarget answers each GET of default/x as the object at the next
// resourceVersion (from 10), or as state says.
type rereadTarget struct {
	reads atomic.Int64
	// state: "" (the client's object), "gone" (404), "other" (another
	// client's object), "broken" (500).
	state string
}

func (f *rereadTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.reads.Add(1)
	w.Header().Set("Content-Type", "application/json")
	owner := "client"
	switch f.state {
	case "gone":
		w.WriteHeader(http.StatusNotFound)
		_, _ = fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","details":{"name":"x","group":"example.com","kind":"myresources"},"code":404}`)
		return
	case "broken":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500}`)
		return
	case "other":
		owner = "team-b"
	}
	_, _ = fmt.Fprintf(w, `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","namespace":"default","uid":"u1","resourceVersion":"%d","labels":{"vcluster.com/owner-vcluster":%q,"vcluster.com/owner-project":"default"}}}`, 9+n, owner)
}

// retryOnConflict retries only conflicts on conditions crproxy added, each
// time from the object read again, at most maxConflictRetries times, and
// stops when the object is gone or no longer the client's.
func TestRetryOnConflict(t *testing.T) {
	for _, c := range []struct {
		name        string
		conditional bool
		state       string
		conflicts   int   // answers 409 this many times, then 200
		failWith    error // attempt's error
		// want: the answer, the resourceVersions attempts were made
		// from, gone, and whether it ended in an error.
		code    int
		from    string
		gone    bool
		wantErr bool
	}{
		{name: "no conflict", conditional: true, code: 200, from: "[5]"},
		{name: "the caller's condition", conditional: false, conflicts: 1, code: 409, from: "[5]"},
		{name: "two conflicts", conditional: true, conflicts: 2, code: 200, from: "[5 10 11]"},
		{name: "conflicts past the bound", conditional: true, conflicts: 100, code: 409, from: "[5 10 11 12]"},
		{name: "gone meanwhile", conditional: true, conflicts: 1, state: "gone", code: 409, from: "[5]", gone: true},
		{name: "another client's meanwhile", conditional: true, conflicts: 1, state: "other", code: 409, from: "[5]", gone: true},
		{name: "the read fails", conditional: true, conflicts: 1, state: "broken", from: "[5]", wantErr: true},
		{name: "the attempt fails", conditional: true, failWith: errors.New("lost"), from: "[5]", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := &rereadTarget{state: c.state}
			res := mirroredResource(t, target, fakeObject)
			req := &Request{Resource: res, Verb: "update", Namespace: "default", Name: "x", Path: "/apis/example.com/v1/namespaces/default/myresources/x", Query: url.Values{}}
			w := New(Options{Client: config.Client{Name: "client"}})
			checked, _, _ := res.Cache.Get("default", "x")
			var from []uint64
			resp, gone, err := w.retryOnConflict(context.Background(), req, checked, checked, c.conditional, func(current *store.Object) (*Response, error) {
				from = append(from, current.ResourceVersion)
				if c.failWith != nil {
					return nil, c.failWith
				}
				if len(from) <= c.conflicts {
					return &Response{Code: http.StatusConflict}, nil
				}
				return &Response{Code: http.StatusOK}, nil
			})
			if got := fmt.Sprint(from); got != c.from {
				t.Errorf("attempts from resourceVersions %s, want %s", got, c.from)
			}
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want one: %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			if resp.Code != c.code || gone != c.gone {
				t.Errorf("answer %d, gone %v; want %d, %v", resp.Code, gone, c.code, c.gone)
			}
		})
	}
}
