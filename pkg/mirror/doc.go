// Package mirror keeps crproxy's copy of the target clusters' objects
// current.
//
// Contract: for each proxied (target, resource) it runs one client-go dynamic
// informer (tools/cache) as the client identity
// loft:vcluster:p-<project>:<name>, by impersonation, so the target's RBAC
// decides what the mirror may read. In owned mode the informer's list and
// watch select only objects carrying this client's owner labels; in all mode
// every object. Wildcard keys (*.group/version) expand to every resource the
// target's discovery lists for the group/version. The mirror hands pkg/store
// ordered events and the latest resourceVersion, bookmarks included, and
// resumes from the resourceVersion the store persisted; when that is too old
// it relists and hands over the difference.
package mirror
