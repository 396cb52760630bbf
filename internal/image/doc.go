// Package image assembles crproxy's container image without a daemon or a
// registry: an OCI image of one layer on an empty base, written as an OCI
// image layout and as a tarball that `docker load` and `crane push` accept.
// `make image` drives it through hack/tools/image.
//
// The contract:
//
//   - The binary must be a static Linux build (CGO_ENABLED=0, -trimpath);
//     Build reads its build information and refuses anything else. The
//     image's OS, architecture and variant are the binary's.
//   - The layer holds /crproxy, /etc/passwd and /etc/group with the user
//     nonroot (uid and gid 65532, as in distroless), /etc/nsswitch.conf,
//     the CA bundle /etc/ssl/certs/ca-certificates.crt, /tmp (1777),
//     /home/nonroot and /var/lib/crproxy (the Helm chart's --data-dir, owned
//     by nonroot).
//   - The CA bundle is the unconstrained roots of Mozilla's NSS store as
//     shipped in the Go module golang.org/x/crypto/x509roots/fallback (the
//     version in go.mod), so the same commit always gets the same bundle,
//     whatever the build machine has. Roots that NSS trusts only up to a
//     date cannot be said in a PEM file and are left out. Go reads that
//     path first on Linux, so no SSL_CERT_FILE is set.
//   - The configuration: user 65532:65532, entrypoint ["/crproxy"] and no
//     command (the chart passes `serve` and its flags), working directory
//     /var/lib/crproxy (so the default relative --data-dir is writable),
//     port 9443/tcp, and the org.opencontainers.image.* labels.
//   - Reproducible: every file has the mtime Options.Created, the tar
//     entries are sorted with fixed owners and no PAX records, the layer is
//     gzipped by the standard library, and the image's created time is
//     Options.Created. The same binary and Options give the same layer,
//     config and manifest digests.
//   - The default reference is the Helm chart's (Reference): its values'
//     image.repository and, as the chart's default tag, its appVersion.
package image
