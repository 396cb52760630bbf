package writethrough

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/config"
)

// racingTarget has no object default/y when asked first; by the time an
// apply arrives, owner (another client, or this one) has created it.
type racingTarget struct {
	owner   string
	mu      sync.Mutex
	created bool
	applies []map[string]any
}

func (f *racingTarget) object() []byte {
	return []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"y","namespace":"default","uid":"u-y","resourceVersion":"7","labels":{"vcluster.com/owner-vcluster":"` + f.owner + `","vcluster.com/owner-project":"default"}},"spec":{"text":"theirs"}}`)
}

func (f *racingTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodGet:
		if !f.created {
			f.created = true // the other client creates it right after this answer
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","details":{"name":"y","group":"example.com","kind":"myresources"},"code":404}`))
			return
		}
		_, _ = w.Write(f.object())
	case http.MethodPatch:
		body, _ := io.ReadAll(r.Body)
		var doc map[string]any
		_ = json.Unmarshal(body, &doc)
		f.applies = append(f.applies, doc)
		meta, _ := doc["metadata"].(map[string]any)
		if rv, _ := meta["resourceVersion"].(string); rv != "" && rv != "7" {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409,"message":"the object has been modified"}`))
			return
		}
		_, _ = w.Write(f.object())
	}
}

// A server-side apply that creates, in owned mode, is conditional on the
// object not existing: when another client created it since the check,
// the apply does not land on it and the caller gets 404; when this client
// created it meanwhile, the apply goes to it.
func TestApplyThatCreatesDoesNotLandOnAnotherClientsObject(t *testing.T) {
	for _, c := range []struct {
		owner   string
		code    int
		applies int
	}{
		{owner: "team-b", code: http.StatusNotFound, applies: 1},
		{owner: "client", code: http.StatusOK, applies: 2},
	} {
		t.Run("created meanwhile by "+c.owner, func(t *testing.T) {
			fake := &racingTarget{owner: c.owner}
			res := mirroredResource(t, fake)
			w := New(Options{Client: config.Client{Name: "client"}})
			resp, err := w.Write(context.Background(), &Request{
				Resource: res, Verb: "patch", Namespace: "default", Name: "y",
				Path: "/apis/example.com/v1/namespaces/default/myresources/y", Query: url.Values{"fieldManager": {"kubectl"}},
				ContentType: "application/apply-patch+yaml",
				Body:        []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"y","namespace":"default"},"spec":{"text":"mine"}}`),
			})
			var code int
			if err != nil {
				if st, ok := err.(apierrors.APIStatus); ok {
					code = int(st.Status().Code)
				}
			} else {
				code = resp.Code
			}
			if code != c.code || len(fake.applies) != c.applies {
				t.Fatalf("answer %d after %d applies at the target; want %d after %d (%v)", code, len(fake.applies), c.code, c.applies, err)
			}
			first, _ := fake.applies[0]["metadata"].(map[string]any)
			if first["resourceVersion"] != createOnlyResourceVersion {
				t.Errorf("the creating apply was sent with resourceVersion %v, want %s", first["resourceVersion"], createOnlyResourceVersion)
			}
		})
	}
}

// A status merge patch is conditional on the resourceVersion the ownership
// check saw: the target resets a status write's metadata, so a UID there
// would not stop it from landing on an object recreated meanwhile.
func TestStatusPatchIsConditional(t *testing.T) {
	w, res, fake := newFakeTargetWriter(t, fakeObject)
	_, err := w.Write(context.Background(), &Request{
		Resource: res, Verb: "patch", Namespace: "default", Name: "x", Subresource: "status",
		Path: "/apis/example.com/v1/namespaces/default/myresources/x/status", Query: url.Values{},
		ContentType: "application/merge-patch+json", Body: []byte(`{"status":{"phase":"Ready"}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := fake.received()
	if len(sent) != 1 {
		t.Fatalf("the target received %q", fake.written())
	}
	var patch struct {
		Metadata struct {
			UID             string `json:"uid"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(sent[0].body, &patch); err != nil {
		t.Fatal(err)
	}
	if patch.Metadata.ResourceVersion != "5" || patch.Metadata.UID != "u1" {
		t.Errorf("the status patch carries resourceVersion %q and uid %q, want 5 and u1: %s", patch.Metadata.ResourceVersion, patch.Metadata.UID, sent[0].body)
	}
}
