package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
)

// A watch from a resourceVersion older than the mirror's window is
// answered as the kube-apiserver answers it: 200, then one ERROR event
// holding a 410 Expired Status, and the stream ends (a client relists).
func TestExpiredWatchIsAnErrorEvent(t *testing.T) {
	target := faketarget.New(t)
	for _, name := range []string{"a", "b", "c"} {
		target.Add(`{"metadata":{"name":"` + name + `","namespace":"default"}}`)
	}
	res := target.Resource(config.AccessAll) // its window starts at its revision
	h := &apiHandler{}
	r := httptest.NewRequest(http.MethodGet, "/apis/example.com/v1/namespaces/default/myresources?watch=1&resourceVersion=1&timeoutSeconds=5", nil)
	rec := httptest.NewRecorder()
	h.watch(rec, r, res, &request.RequestInfo{Verb: "watch", Namespace: "default", Resource: "myresources"})

	if rec.Code != http.StatusOK {
		t.Fatalf("answer %d, want 200 and an ERROR event:\n%s", rec.Code, rec.Body)
	}
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d events, want one ERROR:\n%s", len(lines), rec.Body)
	}
	var ev struct {
		Type   string
		Object metav1.Status
	}
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	s := ev.Object
	if ev.Type != "ERROR" || s.Kind != "Status" || s.APIVersion != "v1" || s.Status != metav1.StatusFailure ||
		s.Code != http.StatusGone || s.Reason != metav1.StatusReasonExpired || !strings.HasPrefix(s.Message, "too old resource version: 1 (") {
		t.Errorf("event %s, want ERROR with a 410 Expired Status", lines[0])
	}
}
