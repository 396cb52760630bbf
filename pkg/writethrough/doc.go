// Package writethrough carries every mutation of a proxied resource to its
// target, synchronously.
//
// Contract: a write reaches the target as loft:vcluster:p-<project>:<name>
// (the caller recorded as an impersonation extra), carries the owner labels
// vcluster.com/owner-vcluster and vcluster.com/owner-project whatever the
// caller sent, and in owned mode only touches objects this client owns: a
// write to another's object answers 404, and the write is conditional on the
// UID the ownership check saw. A missing namespace is created on the target
// first. A successful write returns once the mirror holds its
// resourceVersion (bounded wait), so the caller reads its own write. Bad
// input answers a Kubernetes Status and nothing reaches the target; when the
// target is down the write fails with 503, and with 504 when its outcome is
// unknown. Nothing is queued.
package writethrough
