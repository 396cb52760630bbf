package mirror

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// errResync says the mirror cannot resume from what it holds: the target
// no longer has its resourceVersion (410), or it was reset (a rebuilt
// target). Only a full list brings it back.
var errResync = errors.New("the mirror must be listed again")

// run keeps the resource's cache current until ctx ends. It resumes from
// what the cache holds whenever it can: after a restart (the persisted
// state) and after every broken or ended watch, with a watch from the
// cache's resourceVersion. client-go's reflector would list everything
// again in both cases (it relists after a watch that ended with an error,
// as a cut connection does), which for 100,000 objects took B6 half a
// minute. The reflector runs only for a full sync: the first one, and after
// a 410 or a reset; it stops once it has replaced the cache's contents.
func (r *Resource) run(ctx context.Context, checkIdentity func(context.Context) error, log *zap.Logger) {
	log = log.With(zap.String("target", r.Target.ID), zap.String("resource", r.GVR.String()))
	for ctx.Err() == nil {
		if r.Cache.Synced() && r.Cache.ResourceVersion() > 0 {
			err := r.follow(ctx, checkIdentity, log)
			if ctx.Err() != nil {
				return
			}
			log.Info("listing the resource again", zap.Error(err))
		}
		r.fullSync(ctx, checkIdentity)
	}
}

// fullSync runs a reflector until it has listed the resource into the
// cache once (or ctx ends).
func (r *Resource) fullSync(ctx context.Context, checkIdentity func(context.Context) error) {
	syncCtx, cancel := context.WithCancel(ctx)
	replaced := make(chan struct{})
	reflector := r.newReflector(checkIdentity, func() {
		select {
		case <-replaced:
		default:
			close(replaced)
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		reflector.RunWithContext(syncCtx)
	}()
	select {
	case <-replaced:
	case <-ctx.Done():
	}
	cancel()
	<-done
}

// follow watches the target from the cache's resourceVersion and applies
// the events, again after every watch that ends, until the target says it
// cannot resume (errResync) or ctx ends. A target that does not answer is
// retried on its backoff (pkg/reconnect). The target's identity is checked
// before the first watch, as before a list.
func (r *Resource) follow(ctx context.Context, checkIdentity func(context.Context) error, log *zap.Logger) error {
	conn := r.Target.Connection
	checked := false
	apply := reflectorStore{cache: r.Cache, passthrough: r.Target.Passthrough}
	var progress followerProgress
	for ctx.Err() == nil {
		var w watch.Interface
		err := conn.Retry(ctx, func(ctx context.Context) error {
			if !checked {
				// Again on every attempt until a watch opens: the check
				// passes silently when it cannot ask the target.
				if err := checkIdentity(ctx); err != nil {
					return err
				}
				if !r.Cache.Synced() {
					return errResync // reset: the target was rebuilt
				}
			}
			// As the reflector does: end a watch now and then, so one the
			// target silently dropped does not hang forever.
			timeout := int64(300 + rand.IntN(300))
			if progress.next {
				timeout = progressWatchTimeout
			}
			var err error
			w, err = r.watchTarget(ctx, metav1.ListOptions{
				LabelSelector:       r.Selector.String(),
				ResourceVersion:     strconv.FormatUint(r.Cache.ResourceVersion(), 10),
				AllowWatchBookmarks: true,
				TimeoutSeconds:      &timeout,
			})
			return err
		})
		if errors.Is(err, errResync) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return fmt.Errorf("%w: %v", errResync, err)
		}
		if err != nil {
			return err
		}
		checked = true
		conn.MarkSynced()
		err = r.applyEvents(ctx, w, apply, &progress, log)
		if errors.Is(err, errProgressRequested) {
			progress.next = true
			continue
		}
		if err != nil {
			return err
		}
		// Ended: the target closed it, it timed out, or the connection
		// broke. Resume from what the cache now holds; do not spin if the
		// target keeps ending watches at once.
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return ctx.Err()
}

// applyEvents applies w's events to the cache until w ends (nil) or ctx
// does, the target says the watch cannot go on from where it started
// (errResync), or a read asks for the target's progress
// (errProgressRequested). A watch opened for a bookmark (progress.next)
// ends once its bookmark is applied; a request while it is open waits for
// that bookmark and then for another such watch, since reopening would
// put the bookmark off.
func (r *Resource) applyEvents(ctx context.Context, w watch.Interface, apply reflectorStore, progress *followerProgress, log *zap.Logger) error {
	defer w.Stop()
	forProgress := progress.next
	progress.next = false
	signal := r.progress.signal()
	requested := false
	opened := time.Now()
	// end is applyEvents' answer once w ends without an error.
	end := func() error {
		if requested {
			return errProgressRequested
		}
		return nil
	}
	for {
		var ev watch.Event
		var open bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-signal:
			switch {
			case progress.muted():
			case forProgress:
				requested = true
			default:
				return errProgressRequested
			}
			continue
		case ev, open = <-w.ResultChan():
		}
		if !open {
			if forProgress && time.Since(opened) >= progressWatchLived {
				progress.mute(log) // its deadline came without the bookmark
			}
			return end()
		}
		r.Target.Connection.EventReceived()
		var err error
		switch ev.Type {
		case watch.Added:
			err = apply.Add(ev.Object)
		case watch.Modified:
			err = apply.Update(ev.Object)
		case watch.Deleted:
			err = apply.Delete(ev.Object)
		case watch.Bookmark:
			err = bookmark(apply, ev.Object)
		case watch.Error:
			status := apierrors.FromObject(ev.Object)
			if apierrors.IsResourceExpired(status) || apierrors.IsGone(status) {
				return fmt.Errorf("%w: %v", errResync, status)
			}
			log.Info("the watch ended with an error; resuming", zap.Error(status))
			return end()
		}
		if err != nil {
			log.Warn("could not apply a watched event", zap.String("type", string(ev.Type)), zap.Error(err))
		}
		if forProgress && ev.Type == watch.Bookmark {
			return end() // the bookmark asked for: back to a long watch
		}
	}
}

// bookmark applies a BOOKMARK event's resourceVersion.
func bookmark(s reflectorStore, obj any) error {
	m, ok := obj.(metav1.Object)
	if !ok {
		return fmt.Errorf("mirror: unexpected bookmark object %T", obj)
	}
	return s.Bookmark(m.GetResourceVersion())
}
