package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/storage"

	"github.com/crproxy/crproxy/pkg/store"
)

// Read is what a read asks of the mirror: the resourceVersion rules of its
// query, as the server parsed them. Resource.Object, List and Watch decide
// from it, by the kube-apiserver's rules, what the read waits for and
// which state answers it; the server only parses, formats and streams.
type Read struct {
	// Freshness is the resourceVersion parameter: "" (Consistent), "0",
	// or N (NotOlderThan N).
	Freshness
	// Exact asks for a list of the state at NotOlderThan exactly:
	// resourceVersionMatch=Exact, or the apiserver's legacy exact match
	// (a first page at N without a resourceVersionMatch).
	Exact bool
	// Continue is the resourceVersion of a list's continue token: the
	// page is of the state at it (0: no token).
	Continue uint64
	// SendInitialEvents is a watch's sendInitialEvents (nil: unset).
	SendInitialEvents *bool
	// Scope is the namespace and selectors of a list or watch: a
	// consistent one proves the mirror current for them only. Its Matches
	// must be set when it has selectors.
	Scope Scope
}

// Object answers a GET by name: the object as read asks for it, or 404
// NotFound. A consistent GET is getConsistent's; any other waits as
// waitFresh does and reads the mirror. Like List and Watch, it adds the
// Warning of a read served while the target is down (warnIfStale).
func (r *Resource) Object(ctx context.Context, read Read, namespace, name string) (*store.Object, error) {
	r.warnIfStale(ctx)
	if read.Consistent {
		return r.getConsistent(ctx, namespace, name)
	}
	if err := r.waitFresh(ctx, read.Freshness, Scope{}); err != nil {
		return nil, err
	}
	o, _, ok := r.Cache.Get(namespace, name)
	if !ok {
		return nil, apierrors.NewNotFound(r.GVR.GroupResource(), name)
	}
	return o, nil
}

// List returns the snapshot a LIST answers from: a continue token's state
// (410 Expired once compacted away), resourceVersionMatch=Exact's state
// (410 when too old, 504 when still ahead of the mirror after
// waitNotOlderThan), or the mirror's state once waitFresh allows.
func (r *Resource) List(ctx context.Context, read Read) (*store.Snapshot, error) {
	r.warnIfStale(ctx)
	switch {
	case read.Continue != 0:
		if err := r.waitSynced(ctx); err != nil {
			return nil, err
		}
		// A token from another replica may be ahead of this mirror by
		// its lag: wait for it, as for a resourceVersion not older than.
		if err := r.waitNotOlderThan(ctx, read.Continue); err != nil {
			return nil, err
		}
		snap, err := r.Cache.SnapshotAt(read.Continue)
		if errors.Is(err, store.ErrExpired) {
			return nil, ErrContinueExpired()
		}
		return snap, err
	case read.Exact:
		// The kube-apiserver's cache waits for an exact version it does
		// not hold yet too.
		if err := r.waitFresh(ctx, Freshness{NotOlderThan: read.NotOlderThan}, Scope{}); err != nil {
			return nil, err
		}
		snap, err := r.Cache.SnapshotAt(read.NotOlderThan)
		if errors.Is(err, store.ErrExpired) {
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", read.NotOlderThan, r.Cache.ResourceVersion()))
		}
		if err != nil {
			return nil, storage.NewTooLargeResourceVersionError(read.NotOlderThan, r.Cache.ResourceVersion(), 1)
		}
		return snap, nil
	default:
		if err := r.waitFresh(ctx, read.Freshness, read.Scope); err != nil {
			return nil, err
		}
		return r.Cache.Snapshot(), nil
	}
}

// Watch starts a WATCH: a watcher of the mirror's events and, when the
// watch begins with the current state (sendInitialEvents, or the legacy
// resourceVersion "" and "0"), the snapshot to send first as ADDED
// events. Every watch first waits as waitFresh does; a watch from N starts
// after N, once the mirror holds N, or answers 410 Expired "too old
// resource version" when N is gone from the event window (the apiserver
// sends either error as the watch's ERROR event).
func (r *Resource) Watch(ctx context.Context, read Read) (*store.Watcher, *store.Snapshot, error) {
	r.warnIfStale(ctx)
	withState := read.InitialEvents()
	fromNow := !withState && read.NotOlderThan == 0
	// A watch from N waits for N as a read does: the kube-apiserver's
	// cache starts one from a version it does not hold yet at once, but
	// the mirror cannot tell the events up to N from those after it before
	// it holds N (504 "Too large resource version" after the bound).
	if err := r.waitFresh(ctx, read.Freshness, read.Scope); err != nil {
		return nil, nil, err
	}
	from := read.NotOlderThan
	if withState || fromNow {
		from = 0
	}
	w, snap, err := r.Cache.Watch(from, withState)
	if errors.Is(err, store.ErrExpired) {
		return nil, nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", read.NotOlderThan, r.Cache.ResourceVersion()))
	}
	return w, snap, err
}

// InitialEvents reports whether a watch begins with the current state as
// ADDED events: sendInitialEvents=true, or, without it, resourceVersion
// "" and "0" (the legacy list-then-watch shortcut).
func (read Read) InitialEvents() bool {
	if read.SendInitialEvents != nil {
		return *read.SendInitialEvents
	}
	return read.NotOlderThan == 0
}

// ErrContinueExpired is the kube-apiserver's answer to a continue token
// whose state is gone.
func ErrContinueExpired() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusGone,
		Reason:  metav1.StatusReasonExpired,
		Message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
	}}
}
