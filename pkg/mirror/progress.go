package mirror

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
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
// from the mirror's resourceVersion with timeoutSeconds
// progressWatchTimeout. The target's watch cache sends a watch a bookmark
// of its current resourceVersion 2 s before the watch's deadline (a
// deadline nearer than that gets none), which for 3 s is 1 s after it
// opened: its bookmark timer fires every 1-1.25 s, so the bookmark comes
// 0-2.25 s after the watch opened. It comes after every event it covers,
// as a periodic one does, so nothing the target committed is skipped;
// then the follower goes back to a long watch. A target whose watch
// sends no such bookmark (one without a watch cache) mutes requests for
// progressMute, so that reads do not keep ending the long watch whose
// periodic bookmarks they then wait for.
const (
	// progressAfter is how long a read waits for its resourceVersion
	// before asking the target: a continue token of another crproxy is
	// usually reached by the watch within it.
	progressAfter = 100 * time.Millisecond
	// progressWatchTimeout is the timeoutSeconds of the watch reopened for
	// a bookmark: the shortest whose bookmark the target's watch cache
	// schedules (2 s before the deadline, in the future).
	progressWatchTimeout = 3
	// progressWatchLived is how long a watch opened for a bookmark ran
	// when it ended at its deadline, not because the connection broke.
	progressWatchLived = (progressWatchTimeout - 1) * time.Second
	// progressMute is how long requests are ignored after a watch opened
	// for a bookmark reached its deadline without one.
	progressMute = 5 * time.Minute
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

// followerProgress is the follower's side of progress requests.
type followerProgress struct {
	// next says the next watch is opened for a bookmark.
	next bool
	// mutedUntil is when requests are heard again, after a watch opened
	// for a bookmark got none.
	mutedUntil time.Time
}

// muted reports whether requests are ignored now.
func (p *followerProgress) muted() bool { return time.Now().Before(p.mutedUntil) }

// mute ignores requests for progressMute.
func (p *followerProgress) mute(log *zap.Logger) {
	p.mutedUntil = time.Now().Add(progressMute)
	log.Info("the target sent no bookmark before a watch's deadline; reads ahead of the mirror wait for its periodic bookmarks",
		zap.Duration("for", progressMute))
}
