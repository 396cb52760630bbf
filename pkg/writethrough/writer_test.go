package writethrough

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
)

// A write by name whose ownership check saw the mirror's copy of an object
// since deleted and created again addresses the new object, as at the
// kube-apiserver, when this client owns it (the mirror lags, after a
// target restart for one); when another client owns it, the caller gets
// 404 and nothing is written. Every write carries a UID precondition.
func TestWriteToAnObjectReplacedSinceTheMirrorsCopy(t *testing.T) {
	for _, c := range []struct {
		verb, owner string
		code        int
		after       string
	}{
		{"merge", "client", http.StatusOK, "b/client"},
		{"merge", "team-b", http.StatusNotFound, "new/team-b"},
		{"delete", "client", http.StatusOK, "gone"},
		{"delete", "team-b", http.StatusNotFound, "new/team-b"},
	} {
		t.Run(c.verb+" of "+c.owner+"'s", func(t *testing.T) {
			target := faketarget.New(t)
			old := target.Add(mineObject)
			res := target.Resource(config.AccessOwned) // the mirror holds the old one
			target.Remove("default", "mine")
			replaced := target.Add(strings.NewReplacer(`"client"`, `"`+c.owner+`"`, `"a"`, `"new"`).Replace(mineObject))
			w := New(Options{Client: faketarget.Client})
			req := verbRequest(c.verb, "mine")
			req.Resource = res
			resp, err := w.Write(context.Background(), req)
			if got := codeOf(resp, err); got != c.code {
				t.Fatalf("answer %d (%v), want %d", got, err, c.code)
			}
			if got := after(target, "mine"); got != c.after {
				t.Errorf("the target holds %s, want %s", got, c.after)
			}
			oldMeta, _ := metadataOf(old)
			newMeta, _ := metadataOf(replaced)
			oldUID, newUID := oldMeta["uid"], newMeta["uid"]
			for _, r := range target.Writes() {
				var doc struct {
					Metadata      struct{ UID string }
					Preconditions struct{ UID *string }
				}
				_ = json.Unmarshal(r.Body, &doc)
				uid := doc.Metadata.UID
				if doc.Preconditions.UID != nil {
					uid = *doc.Preconditions.UID
				}
				if uid != oldUID && uid != newUID {
					t.Errorf("%s was sent with UID precondition %q, want the checked object's", r, uid)
				}
			}
		})
	}
}
