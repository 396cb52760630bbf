// Package status is the `crproxy status` verb: it asks a running crproxy
// for its /status and prints each target's connection and each mirrored
// resource's state.
//
// Contract: it authenticates to crproxy as the client cluster's kubeconfig
// from the configuration file does to the client cluster (crproxy's
// delegating authenticator accepts that cluster's client certificates and
// bearer tokens), and verifies crproxy's serving certificate against the
// self-signed one crproxy wrote into its data folder, or against
// --certificate-authority; --insecure-skip-tls-verify skips the check. It
// prints tables (-o table) or the server's JSON (-o json) and fails with
// crproxy's message when crproxy refuses the caller.
package status
