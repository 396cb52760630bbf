package writethrough

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/config"
)

// replacedTarget holds default/x as UID u2, created again after the u1
// the mirror still holds; it refuses a write conditional on another UID
// as kube-apiserver does.
type replacedTarget struct {
	owner string
	mu    sync.Mutex
	sent  []string // UID preconditions of the writes it received
	done  int      // writes it applied
}

func (f *replacedTarget) object() string {
	return `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","namespace":"default","uid":"u2","resourceVersion":"9","labels":{"vcluster.com/owner-vcluster":"` + f.owner + `","vcluster.com/owner-project":"default"}},"spec":{"text":"new"}}`
}

func (f *replacedTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		_, _ = io.WriteString(w, f.object())
		return
	}
	body, _ := io.ReadAll(r.Body)
	var doc struct {
		Metadata      struct{ UID string }
		Preconditions struct{ UID *string }
	}
	_ = json.Unmarshal(body, &doc)
	uid := doc.Metadata.UID
	if doc.Preconditions.UID != nil {
		uid = *doc.Preconditions.UID
	}
	f.sent = append(f.sent, uid)
	if uid != "" && uid != "u2" {
		w.WriteHeader(http.StatusConflict)
		_, _ = fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Precondition failed: UID in precondition: %s, UID in object meta: u2","reason":"Conflict","details":{"name":"x","group":"example.com","kind":"myresources"},"code":409}`, uid)
		return
	}
	f.done++
	_, _ = io.WriteString(w, f.object())
}

// A write by name whose ownership check saw the mirror's copy of an object
// since deleted and created again addresses the new object, as at the
// kube-apiserver, when this client owns it (the mirror lags, after a
// target restart for one); when another client owns it, the caller gets
// 404 and nothing is written.
func TestWriteToAnObjectReplacedSinceTheMirrorsCopy(t *testing.T) {
	for _, c := range []struct {
		verb, owner string
		code        int
		done        int
	}{
		{"patch", "client", http.StatusOK, 1},
		{"patch", "team-b", http.StatusNotFound, 0},
		{"delete", "client", http.StatusOK, 1},
		{"delete", "team-b", http.StatusNotFound, 0},
	} {
		t.Run(c.verb+" of "+c.owner+"'s", func(t *testing.T) {
			fake := &replacedTarget{owner: c.owner}
			res := mirroredResource(t, fake, fakeObject) // u1, the client's
			req := &Request{Resource: res, Verb: c.verb, Namespace: "default", Name: "x",
				Path: "/apis/example.com/v1/namespaces/default/myresources/x", Query: url.Values{}}
			if c.verb == "patch" {
				req.ContentType, req.Body = "application/merge-patch+json", []byte(`{"spec":{"text":"patched"}}`)
			}
			w := New(Options{Client: config.Client{Name: "client"}})
			resp, err := w.Write(context.Background(), req)
			code := 0
			switch {
			case err == nil:
				code = resp.Code
			case apierrors.IsNotFound(err):
				code = http.StatusNotFound
			default:
				t.Fatalf("error %v", err)
			}
			if code != c.code || fake.done != c.done {
				t.Fatalf("answer %d with %d writes applied (UID preconditions sent: %s); want %d with %d", code, fake.done, strings.Join(fake.sent, ","), c.code, c.done)
			}
			for _, uid := range fake.sent {
				if uid == "" {
					t.Errorf("a write was sent without a UID precondition: %q", fake.sent)
				}
			}
		})
	}
}
