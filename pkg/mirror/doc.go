// Package mirror keeps crproxy's copy of the target clusters' objects
// current.
//
// Contract: for each proxied (target, resource) it runs one follower
// (Resource.run) as the client identity loft:vcluster:p-<project>:<name>, by
// impersonation, so the target's RBAC decides what the mirror may read: a
// watch from the cache's resourceVersion whenever the cache holds a state,
// and a client-go Reflector (tools/cache) for full syncs. In owned mode the
// follower's list and watch select only objects carrying this client's
// owner labels; in all mode every object. Wildcard keys (*.group/version)
// expand to every resource the target's discovery lists for the
// group/version, and the mirror tracks that discovery as it changes
// (discovery_poller.go): a resource the target starts serving is
// mirrored, one it stops serving is dropped with its cache. The mirror
// hands pkg/store ordered events and the latest resourceVersion, bookmarks included, and
// resumes from the resourceVersion the store holds (after a restart, the
// persisted one; after a broken watch, the latest); when the target says
// that is too old (410) it relists and hands over the difference. Every
// object is turned into the client's view of its ownerReferences and GC
// finalizers as it enters (ViewObject, owner_view.go).
//
// Reads: Resource.Object, List and Watch answer a read as the
// kube-apiserver's cacher would, by its resourceVersion rules (read.go); a
// consistent read first proves the mirror current against the target
// without writing anything there (consistency.go, selection_state.go); a
// read at a resourceVersion the target holds and the mirror does not yet
// asks the target for a bookmark through the follower's watch
// (progress.go).
//
// Use:
//
//	m, err := mirror.New(mirror.Options{...})
//	go m.Run(ctx)
//	res := m.GroupVersion("example.com", "v1").Resource("myresources")
//	snap, err := res.List(ctx, mirror.Read{Freshness: mirror.Freshness{Consistent: true}})
package mirror
