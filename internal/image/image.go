package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
	"sigs.k8s.io/yaml"
)

// Where things are in the image, and who runs it.
const (
	// BinaryPath is the crproxy binary and the entrypoint.
	BinaryPath = "/crproxy"
	// CABundlePath is the PEM bundle of trusted roots, the first file Go's
	// crypto/x509 reads on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// DataDir is the Helm chart's --data-dir, owned by the user, and the
	// working directory.
	DataDir = "/var/lib/crproxy"
	// UID and GID are the user and group nonroot, as in distroless.
	UID, GID = 65532, 65532
	// User is the configuration's user.
	User = "65532:65532"
	// Port is the port `crproxy serve` listens on in the chart.
	Port = "9443/tcp"
	// LayoutDir and TarballFile are the names Write gives its outputs in
	// its folder.
	LayoutDir, TarballFile = "crproxy-oci", "crproxy.tar"
	// Source is the default org.opencontainers.image.source.
	Source = "https://github.com/crproxy/crproxy"
)

// Options describe one image.
type Options struct {
	// Binary is the path of a static Linux crproxy binary. Required.
	Binary string
	// Version is org.opencontainers.image.version, the binary's version.
	Version string
	// Revision is org.opencontainers.image.revision, the source commit.
	Revision string
	// Created is the image's created time and every file's mtime; in
	// `make image`, SOURCE_DATE_EPOCH or the commit's time.
	Created time.Time
	// Source is org.opencontainers.image.source; empty: Source.
	Source string
	// Licenses is org.opencontainers.image.licenses, an SPDX expression;
	// empty: NOASSERTION.
	Licenses string
}

// Build assembles the image of o. It reads the binary and nothing else of
// the machine.
func Build(o Options) (v1.Image, error) {
	if o.Binary == "" {
		return nil, errors.New("image: no binary")
	}
	plat, err := binaryPlatform(o.Binary)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	created := o.Created.UTC().Truncate(time.Second)
	gz, diffID, err := layerTarGz(bin, created)
	if err != nil {
		return nil, err
	}
	digest, size, err := v1.SHA256(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	layer, err := partial.CompressedToLayer(&gzLayer{gz: gz, digest: digest, diffID: diffID, size: size})
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "crproxy internal/image",
			// Nothing of the builder's own build: the same inputs, the
			// same config whichever way the builder was built.
			Comment: fmt.Sprintf("crproxy %s, and in %s the CA roots of golang.org/x/crypto/x509roots/fallback (the version in crproxy's go.mod)", o.Version, CABundlePath),
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   []string{BinaryPath},
		WorkingDir:   DataDir,
		ExposedPorts: map[string]struct{}{Port: {}},
		Labels:       labels(o, created),
	}
	return mutate.ConfigFile(img, cf)
}

// labels are the org.opencontainers.image.* annotations of the config.
func labels(o Options, created time.Time) map[string]string {
	source, licenses := o.Source, o.Licenses
	if source == "" {
		source = Source
	}
	if licenses == "" {
		licenses = "NOASSERTION"
	}
	const p = "org.opencontainers.image."
	return map[string]string{
		p + "title":       "crproxy",
		p + "description": "Serves custom resources of a client Kubernetes cluster from a target cluster: reads from a local mirror, writes through to the target.",
		p + "source":      source,
		p + "url":         source,
		p + "version":     o.Version,
		p + "revision":    o.Revision,
		p + "licenses":    licenses,
		p + "created":     created.Format(time.RFC3339),
	}
}

// binaryPlatform is the platform a static Linux binary was built for, from
// its Go build information.
func binaryPlatform(path string) (v1.Platform, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("image: %s is not a Go binary: %w", path, err)
	}
	s := map[string]string{}
	for _, kv := range bi.Settings {
		s[kv.Key] = kv.Value
	}
	if s["GOOS"] != "linux" {
		return v1.Platform{}, fmt.Errorf("image: %s is built for GOOS=%q, not linux", path, s["GOOS"])
	}
	if s["CGO_ENABLED"] != "0" {
		return v1.Platform{}, fmt.Errorf("image: %s is built with cgo (CGO_ENABLED=%q); the image has no libc", path, s["CGO_ENABLED"])
	}
	if s["-trimpath"] != "true" {
		return v1.Platform{}, fmt.Errorf("image: %s is built without -trimpath, so it holds the build machine's paths", path)
	}
	p := v1.Platform{OS: "linux", Architecture: s["GOARCH"]}
	if p.Architecture == "arm" {
		// GOARM is "7" or "7,softfloat"; the OCI variant is v7.
		p.Variant = "v" + strings.SplitN(s["GOARM"], ",", 2)[0]
	}
	return p, nil
}

// CABundle is the PEM bundle the image carries at CABundlePath: every root
// of the fallback bundle without a constraint, in the bundle's order.
func CABundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}

const (
	passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`
	group = `root:x:0:
nobody:x:65534:
nonroot:x:65532:
`
	// Go's resolver reads it; files first, so the pod's /etc/hosts counts.
	nsswitch = "hosts: files dns\n"
)

// gzLayer is a gzipped layer in memory whose digests are known.
type gzLayer struct {
	gz             []byte
	digest, diffID v1.Hash
	size           int64
}

// Digest is the sha256 of the gzipped layer.
func (l *gzLayer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID is the sha256 of the uncompressed tar.
func (l *gzLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Compressed reads the gzipped layer.
func (l *gzLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}

// Size is the gzipped layer's size.
func (l *gzLayer) Size() (int64, error) { return l.size, nil }

// MediaType is OCI's gzipped layer.
func (l *gzLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// layerTarGz is the image's one layer, gzipped, and the sha256 of its tar
// (the diff ID): its entries sorted by name, every mtime created, owners by
// number and name.
func layerTarGz(bin []byte, created time.Time) ([]byte, v1.Hash, error) {
	type entry struct {
		mode     int64
		uid, gid int
		data     []byte // nil: a directory
	}
	entries := map[string]entry{
		"crproxy":                           {0o755, 0, 0, bin},
		"etc/":                              {0o755, 0, 0, nil},
		"etc/group":                         {0o644, 0, 0, []byte(group)},
		"etc/nsswitch.conf":                 {0o644, 0, 0, []byte(nsswitch)},
		"etc/passwd":                        {0o644, 0, 0, []byte(passwd)},
		"etc/ssl/":                          {0o755, 0, 0, nil},
		"etc/ssl/certs/":                    {0o755, 0, 0, nil},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0, CABundle()},
		"home/":                             {0o755, 0, 0, nil},
		"home/nonroot/":                     {0o700, UID, GID, nil},
		"tmp/":                              {0o1777, 0, 0, nil},
		"var/":                              {0o755, 0, 0, nil},
		"var/lib/":                          {0o755, 0, 0, nil},
		"var/lib/crproxy/":                  {0o755, UID, GID, nil},
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	owner := map[int]string{0: "root", UID: "nonroot"}

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	sum := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, sum))
	for _, n := range names {
		e := entries[n]
		h := &tar.Header{
			Name:    n,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			Uname:   owner[e.uid],
			Gname:   owner[e.gid],
			ModTime: created,
			Format:  tar.FormatUSTAR,
		}
		if e.data == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, v1.Hash{}, fmt.Errorf("image: %s: %w", n, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, v1.Hash{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, v1.Hash{}, err
	}
	if err := zw.Close(); err != nil {
		return nil, v1.Hash{}, err
	}
	return buf.Bytes(), v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum.Sum(nil))}, nil
}

// Reference is the image's name: repository and tag, each defaulting to the
// Helm chart in chartDir (its values' image.repository, and its appVersion,
// the tag the chart uses when image.tag is empty).
func Reference(chartDir, repository, tag string) (name.Tag, error) {
	if repository == "" || tag == "" {
		r, t, err := ChartImage(chartDir)
		if err != nil {
			return name.Tag{}, err
		}
		if repository == "" {
			repository = r
		}
		if tag == "" {
			tag = t
		}
	}
	return name.NewTag(repository+":"+tag, name.StrictValidation)
}

// ChartImage is the image the Helm chart in chartDir runs by default: its
// values.yaml's image.repository and its Chart.yaml's appVersion.
func ChartImage(chartDir string) (repository, tag string, err error) {
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	for file, into := range map[string]any{"Chart.yaml": &chart, "values.yaml": &values} {
		b, err := os.ReadFile(filepath.Join(chartDir, file))
		if err != nil {
			return "", "", err
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			return "", "", fmt.Errorf("image: %s: %w", file, err)
		}
	}
	tag = values.Image.Tag
	if tag == "" {
		tag = chart.AppVersion
	}
	if values.Image.Repository == "" || tag == "" {
		return "", "", fmt.Errorf("image: the chart in %s names no image.repository or appVersion", chartDir)
	}
	return values.Image.Repository, tag, nil
}

// Write writes img as ref into dir: the OCI image layout dir/LayoutDir
// (replaced whole) and the tarball dir/TarballFile (`docker load`,
// `crane push`). Both hold the same manifest and blobs.
func Write(img v1.Image, ref name.Tag, dir string) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lp := filepath.Join(dir, LayoutDir)
	if err := os.RemoveAll(lp); err != nil {
		return err
	}
	p, err := layout.Write(lp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.WriteImage(img); err != nil {
		return err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	// An image, not an artifact: no artifactType (go-containerregistry
	// copies the config's media type there). The annotations are those
	// BuildKit's OCI exporter writes: the tag, and the full name for
	// containerd's `ctr import`.
	desc.ArtifactType = ""
	desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	desc.Annotations = map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	}
	if err := p.AppendDescriptor(*desc); err != nil {
		return err
	}
	// Blobs land as 0600 temporary files; anyone may read an image.
	err = filepath.WalkDir(lp, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(path, 0o644)
	})
	if err != nil {
		return err
	}
	tp := filepath.Join(dir, TarballFile)
	tmp := tp + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, tp)
}
