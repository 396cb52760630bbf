package writethrough

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
)

// A server-side apply that creates, in owned mode, is conditional on the
// object not existing: when another client created it since the check,
// the apply does not land on it and the caller gets 404; when this client
// created it meanwhile, the apply goes to it.
func TestApplyThatCreatesDoesNotLandOnAnotherClientsObject(t *testing.T) {
	for _, c := range []struct {
		owner   string
		code    int
		applies int
		after   string
	}{
		{owner: "team-b", code: http.StatusNotFound, applies: 1, after: "theirs/team-b"},
		{owner: "client", code: http.StatusOK, applies: 2, after: "b/client"},
	} {
		t.Run("created meanwhile by "+c.owner, func(t *testing.T) {
			target := faketarget.New(t)
			res := target.Resource(config.AccessOwned) // holds nothing: the check asks the target
			// The owner creates it right after the check's GET found none.
			var once sync.Once
			target.AfterRequest(func(r faketarget.Request) {
				if r.Method == http.MethodGet {
					once.Do(func() {
						target.Add(strings.NewReplacer(`"mine"`, `"new"`, `"client"`, `"`+c.owner+`"`, `"a"`, `"theirs"`).Replace(mineObject))
					})
				}
			})
			w := New(Options{Client: faketarget.Client})
			req := verbRequest("apply", "new")
			req.Resource = res
			resp, err := w.Write(context.Background(), req)
			if got := codeOf(resp, err); got != c.code {
				t.Fatalf("answer %d (%v), want %d", got, err, c.code)
			}
			var applies []faketarget.Request
			for _, r := range target.Writes() {
				if r.Method == http.MethodPatch {
					applies = append(applies, r)
				}
			}
			if len(applies) != c.applies {
				t.Errorf("%d applies reached the target, want %d: %v", len(applies), c.applies, target.Requests())
			}
			if got := after(target, "new"); got != c.after {
				t.Errorf("the target holds %s, want %s", got, c.after)
			}
			var first struct {
				Metadata struct{ ResourceVersion string } `json:"metadata"`
			}
			if len(applies) > 0 {
				_ = json.Unmarshal(applies[0].Body, &first)
			}
			if first.Metadata.ResourceVersion != createOnlyResourceVersion {
				t.Errorf("the creating apply was sent with resourceVersion %q, want %s", first.Metadata.ResourceVersion, createOnlyResourceVersion)
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
	sent := fake.Writes()
	if len(sent) != 1 {
		t.Fatalf("the target received %q", described(fake.Writes()))
	}
	var patch struct {
		Metadata struct {
			UID             string `json:"uid"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(sent[0].Body, &patch); err != nil {
		t.Fatal(err)
	}
	if patch.Metadata.ResourceVersion != "5" || patch.Metadata.UID != "u1" {
		t.Errorf("the status patch carries resourceVersion %q and uid %q, want 5 and u1: %s", patch.Metadata.ResourceVersion, patch.Metadata.UID, sent[0].Body)
	}
}
