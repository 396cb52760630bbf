package mirror

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A read for a resourceVersion the mirror does not hold yet (a client that
// read it at the target, or a continue token of another crproxy) waits,
// as at the kube-apiserver. The mirror's resourceVersion moves with the
// events of the mirrored selection and with the target's bookmarks, which
// its watch cache sends about once a minute; writes to other keys move the
// target's resourceVersion without an event, so a read at such a version
// would wait for the next bookmark, far beyond its bound.
//
// The kube-apiserver's own watch cache asks etcd for a progress
// notification in that case. The mirror asks the target, keeping the
// order of its watch: a consistent metadata list of the selection makes the
// target's watch cache current (it asks etcd itself) and tells whether the
// target holds the version at all; then the follower reopens its watch
// from the mirror's resourceVersion with a timeout of progressWatchTimeout,
// and the target's watch cache sends that watch a bookmark of its current
// resourceVersion 2 s before the watch's deadline, at once. The bookmark
// comes after every event it covers, as a periodic one does, so nothing
// the target committed is skipped. A target that sends no such bookmark
// (one without a watch cache) leaves the read to its bound, as before.
const (
	// progressAfter is how long a read waits for its resourceVersion
	// before asking the target: a continue token of another crproxy is
	// usually reached by the watch within it.
	progressAfter = 100 * time.Millisecond
	// progressWatchTimeout is the timeoutSeconds of the watch reopened for
	// a bookmark: the target's watch cache schedules a watch's bookmark 2 s
	// before its deadline, so 2 s asks for it at once.
	progressWatchTimeout = 2
)

// errProgressRequested ends a watch so that the follower reopens it for a
// bookmark.
var errProgressRequested = errors.New("a read asked for the target's progress")

// progressRequests carries reads' requests for a bookmark to the
// follower. The zero value is ready to use.
type progressRequests struct {
	once sync.Once
	ch   chan struct{}
}

// signal returns the channel a request arrives on; one request is kept
// while the follower is busy.
func (p *progressRequests) signal() chan struct{} {
	p.once.Do(func() { p.ch = make(chan struct{}, 1) })
	return p.ch
}

// request asks the follower for a bookmark.
func (p *progressRequests) request() {
	select {
	case p.signal() <- struct{}{}:
	default: // one is pending already
	}
}

// requestProgress asks the target to move the mirror to its current
// resourceVersion, when that is at least rv (see above). It returns once
// the follower has been asked; the caller waits for the mirror.
func (r *Resource) requestProgress(ctx context.Context, rv uint64) {
	if _, down := r.Target.Connection.Down(); down {
		return
	}
	state, err := r.selections.call(Scope{}, r.listSelection).Do(ctx)
	if err != nil || state.resourceVersion < rv || r.Cache.ResourceVersion() >= rv {
		return // the target cannot tell, does not hold rv either, or the mirror has it
	}
	r.progress.request()
}
