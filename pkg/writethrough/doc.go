// Package writethrough carries every mutation of a proxied resource to its
// target, synchronously.
//
// Contract: a write reaches the target as loft:vcluster:p-<project>:<name>
// (the caller recorded as the impersonation extra OriginalUserExtra), at the
// same API path, with the same verb and query, and carries the owner labels
// vcluster.com/owner-vcluster and vcluster.com/owner-project whatever the
// caller sent. In owned mode it only touches objects this client owns: a
// named write to another's object answers 404, the write is conditional on
// the UID the ownership check saw, and deletecollection is narrowed to the
// owner selector; a deletecollection the target refuses for lack of the
// verb is carried out as UID-conditional deletes of the caller's objects.
// ownerReferences to owners the target does not hold (not proxied to it)
// are kept in an annotation instead, the target's other owners are put
// back on every write, and the GC finalizers orphan/foregroundDeletion
// carry crproxy names at the target, so each side's garbage collector acts
// only on owners it holds. A namespaced create, update or patch needs the
// namespace in the client cluster (a delete does not, as with the
// NamespaceLifecycle admission plugin); for a write that may create (create,
// server-side apply), a namespace the target lacks is created there once
// every check has passed. A write
// returns as soon as the target has answered; the caller reads its own
// write because a consistent read waits for the target's current state
// (pkg/mirror). Bad input answers a Kubernetes Status and nothing reaches
// the target; a target that cannot be reached answers 503 (nothing
// written), a lost answer 504 (outcome unknown). Nothing is queued; a
// write is sent again only when a condition crproxy added itself did not
// hold (retry.go). See docs/design/write-path.md.
//
// Use:
//
//	namespaces := writethrough.NewNamespaces(clientClusterClientset)
//	namespaces.Start(ctx)
//	w := writethrough.New(writethrough.Options{Client: cfg.Client, Namespaces: namespaces})
//	resp, err := w.Write(ctx, &writethrough.Request{Resource: res, Verb: "create", ...})
package writethrough
