// Package server is crproxy's HTTPS surface, reached by the client
// kube-apiserver through one APIService per proxied group/version.
//
// Contract: callers are authenticated with k8s.io/apiserver's delegating
// authenticator (the aggregator's front-proxy client certificate, or a bearer
// token by TokenReview); anything else gets 401. It serves discovery
// (legacy, and aggregated apidiscovery.k8s.io/v2 at /apis) and OpenAPI for
// the proxied group/versions, answers get, list and watch from the
// mirror with the semantics of a kube-apiserver (selectors, pagination,
// bookmarks, sendInitialEvents; as objects, Tables or
// PartialObjectMetadata, negotiated as the apiserver does; which state a
// read's resourceVersion asks for, pkg/mirror decides), hands mutations to
// pkg/writethrough, and answers every error as a Kubernetes Status.
//
// Beside the API: /livez, /healthz and /readyz for anyone (/readyz fails
// only for a resource with nothing to serve, never for a target that is
// down), and /metrics (Prometheus) and /status (JSON) for any authenticated
// caller; see docs/design/operations.md.
package server
