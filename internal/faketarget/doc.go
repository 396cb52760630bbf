// Package faketarget is a fake target for unit tests of crproxy's request
// logic: an in-memory server of one namespaced custom resource
// (example.com/v1 myresources, kind MyResource) that applies writes as the
// kube-apiserver applies them to a custom resource, with the preconditions
// crproxy relies on (metadata.uid and metadata.resourceVersion in a body
// or a patch, DeleteOptions preconditions, a failing JSON patch test), and
// records every request it receives. It is not a cluster: integration and
// end-to-end tests run real kube-apiservers (internal/localcluster).
//
// Namespaces: every namespace exists until AddNamespace makes the set
// explicit; then a write into a namespace it lacks answers the
// kube-apiserver's `namespaces "x" not found`, and crproxy's GET and
// create of a namespace (/api/v1/namespaces) are served.
//
// Races: Remove, Add and AfterRequest (which runs between two of
// crproxy's requests) play another writer at the target. Echo is the other
// fake: it answers every request with one object and changes nothing, so
// every write meets the same state (fuzzing).
//
// Outcomes: Code reads the HTTP code of an error as a caller receives it,
// and Warnings records the Warnings a request's handling adds. Refused and
// HangUp are addresses of a target a request cannot reach, and of one that
// loses the answer.
//
// What it does not do: admission, validation beyond the preconditions,
// field management (a server-side apply is a merge patch that may
// create), RBAC.
//
// In a test:
//
//	target := faketarget.New(t)
//	target.Add(`{"metadata":{"name":"x","namespace":"default","labels":{...}}}`)
//	res := target.Resource(config.AccessOwned) // its mirror holds x (if Client's)
//	resp, err := writer.Write(ctx, &writethrough.Request{Resource: res, ...})
//	target.Writes() // what reached the target
//	target.Object("default", "x") // what it holds now
package faketarget
