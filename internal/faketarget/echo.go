package faketarget

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
)

// Echo is a target that answers every request with one object and
// changes nothing, recording the writes it receives: every write meets
// the same state, which fuzzing needs and Server, which applies writes,
// cannot give.
type Echo struct {
	object []byte

	mu     sync.Mutex
	writes []Request
}

// NewEcho starts an Echo of object (JSON of GVR's kind), stopped when t
// ends, and returns it with GVR proxied to it in access mode, its mirror
// holding object.
func NewEcho(t testing.TB, object string, access config.AccessMode) (*Echo, *mirror.Resource) {
	t.Helper()
	e := &Echo{object: []byte(object)}
	return e, Mirrored(t, e, access, object)
}

// ServeHTTP answers the object, whatever was asked.
func (e *Echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodGet {
		e.mu.Lock()
		e.writes = append(e.writes, Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Query: r.URL.Query(), Body: body})
		e.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(e.object)
}

// Writes returns the requests received so far that are not reads.
func (e *Echo) Writes() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.writes...)
}

// Forget drops the writes recorded so far.
func (e *Echo) Forget() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writes = nil
}
