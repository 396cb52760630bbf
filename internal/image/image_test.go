package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/x509roots/fallback/bundle"
	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/internal/image"
)

const (
	// The module root and the chart, from this package's folder.
	root     = "../.."
	chartDir = root + "/deploy/helm/crproxy"

	testVersion = "v0.0.0-imagetest"
)

var (
	tmpDir string

	binOnce                  sync.Once
	crproxyPath, builderPath string
	binErr                   error
)

func TestMain(m *testing.M) {
	var err error
	if tmpDir, err = os.MkdirTemp("", "crproxy-image-test-"); err != nil {
		log.Fatal(err)
	}
	code := m.Run()
	_ = os.RemoveAll(tmpDir)
	os.Exit(code)
}

// goBuild builds the package pkg of the module in dir into out, with env
// added to the environment.
func goBuild(dir, pkg, out string, env []string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// staticLinux is how `make image` builds crproxy: static, for Linux, here
// on this machine's architecture.
var staticLinux = []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}

// binaries are the real crproxy, built once per test binary with the
// Makefile's flags (so the build cache of `make build` serves it) and the
// version testVersion, and the builder `make image` runs, hack/tools/image.
// The builder runs as its own process: under -race, gzipping 90 MB in the
// test's process would take minutes.
func binaries(t *testing.T) (crproxy, builder string) {
	t.Helper()
	binOnce.Do(func() {
		start := time.Now()
		crproxyPath = filepath.Join(tmpDir, "crproxy")
		builderPath = filepath.Join(tmpDir, "image")
		binErr = goBuild(root, "./cmd/crproxy", crproxyPath, staticLinux, "-trimpath",
			"-ldflags", "-X github.com/crproxy/crproxy/internal/version.Version="+testVersion)
		if binErr == nil {
			binErr = goBuild(root, "./hack/tools/image", builderPath, nil)
		}
		t.Logf("built crproxy and hack/tools/image in %s", time.Since(start).Round(time.Millisecond))
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return crproxyPath, builderPath
}

// chartImage reads the chart's default image on its own, the way Helm
// renders it: image.repository, and image.tag defaulting to appVersion.
func chartImage(t *testing.T) string {
	t.Helper()
	read := func(file string) map[string]any {
		b, err := os.ReadFile(filepath.Join(chartDir, file))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	values := read("values.yaml")["image"].(map[string]any)
	tag, _ := values["tag"].(string)
	if tag == "" {
		tag = read("Chart.yaml")["appVersion"].(string)
	}
	return values["repository"].(string) + ":" + tag
}

// built is one build's outputs, read back.
type built struct {
	printed   string   // what the builder printed: reference and digest
	fromPath  v1.Image // the layout's image
	fromTar   v1.Image // the tarball's image
	indexJSON []byte
	tarSum    [sha256.Size]byte
}

const revision = "0123456789abcdef0123456789abcdef01234567"

// build runs the builder as `make image` does, from the module's root and
// with the chart's defaults, into dir, and reads both outputs back.
func build(t *testing.T, ref name.Tag, created time.Time, dir string) built {
	t.Helper()
	crproxy, builder := binaries(t)
	cmd := exec.Command(builder, "-binary", crproxy, "-out", dir,
		"-version", testVersion, "-revision", revision, "-epoch", fmt.Sprint(created.Unix()))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", builder, err, stderr.Bytes())
	}
	b := built{printed: strings.TrimSpace(string(out))}

	lp := filepath.Join(dir, image.LayoutDir)
	idx, err := layout.ImageIndexFromPath(lp)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("the layout's index has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != ref.TagStr() {
		t.Errorf("layout ref.name = %q, want %q", got, ref.TagStr())
	}
	if got := desc.Annotations["io.containerd.image.name"]; got != ref.Name() {
		t.Errorf("layout io.containerd.image.name = %q, want %q", got, ref.Name())
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != runtime.GOARCH {
		t.Errorf("layout platform = %v, want linux/%s", desc.Platform, runtime.GOARCH)
	}
	if desc.ArtifactType != "" {
		t.Errorf("layout artifactType = %q, want none (an image)", desc.ArtifactType)
	}
	// Every file readable by all, every blob named by its sha256.
	err = filepath.WalkDir(lp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if fi, err := d.Info(); err != nil || fi.Mode().Perm()&0o444 != 0o444 {
			t.Errorf("%s: mode %v (%v), want readable by all", p, fi.Mode(), err)
		}
		if filepath.Base(filepath.Dir(p)) != "sha256" {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if h, _, err := v1.SHA256(f); err != nil || h.Hex != d.Name() {
			t.Errorf("the blob %s has the digest %s (%v)", p, h, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.fromPath, err = idx.Image(desc.Digest); err != nil {
		t.Fatal(err)
	}
	if b.indexJSON, err = os.ReadFile(filepath.Join(lp, "index.json")); err != nil {
		t.Fatal(err)
	}

	tp := filepath.Join(dir, image.TarballFile)
	if b.fromTar, err = tarball.ImageFromPath(tp, &ref); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(tp) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{ref.Name()}) {
		t.Errorf("the tarball's manifest.json = %+v, want one image tagged %s", m, ref.Name())
	}
	tb, err := os.ReadFile(tp)
	if err != nil {
		t.Fatal(err)
	}
	b.tarSum = sha256.Sum256(tb)

	// The manifests, configs and sizes; TestImage reads the layer's bytes.
	for what, img := range map[string]v1.Image{"layout": b.fromPath, "tarball": b.fromTar} {
		if err := validate.Image(img, validate.Fast); err != nil {
			t.Errorf("the %s's image is not valid: %v", what, err)
		}
	}
	return b
}

type digests struct{ manifest, config, layer, diffID v1.Hash }

func digestsOf(t *testing.T, img v1.Image) digests {
	t.Helper()
	var d digests
	var err error
	if d.manifest, err = img.Digest(); err != nil {
		t.Fatal(err)
	}
	if d.config, err = img.ConfigName(); err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 {
		t.Fatalf("%d layers, want 1", len(ls))
	}
	if d.layer, err = ls[0].Digest(); err != nil {
		t.Fatal(err)
	}
	// The config's diff ID: a layer's DiffID may unzip it (the tarball's
	// does), which takes seconds under -race; extract checks the bytes.
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		t.Fatalf("the config has %d diff IDs, want 1", len(cf.RootFS.DiffIDs))
	}
	d.diffID = cf.RootFS.DiffIDs[0]
	return d
}

// TestImage builds the image twice from the real crproxy, reads both
// outputs back, and checks that they are one image, that its config is what
// the Helm chart needs, and that the extracted binary runs.
func TestImage(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	ref, err := image.Reference(chartDir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := chartImage(t); ref.Name() != want {
		t.Fatalf("the image's default reference is %s; the chart runs %s", ref.Name(), want)
	}

	binaries(t)
	start := time.Now()
	a := build(t, ref, created, filepath.Join(t.TempDir(), "a"))
	b := build(t, ref, created, filepath.Join(t.TempDir(), "b"))
	t.Logf("built the image twice and read it back in %s", time.Since(start).Round(time.Millisecond))

	// The layout keeps the OCI manifest as built. A docker-save tarball has
	// no manifest: crane (and a registry after `crane push`) makes a Docker
	// v2 one of the same config and layer, so its digest is another one.
	da, dt := digestsOf(t, a.fromPath), digestsOf(t, a.fromTar)
	t.Logf("manifest %s (tarball: %s) config %s layer %s", da.manifest, dt.manifest, da.config, da.layer)
	if want := ref.Name() + " " + da.manifest.String(); a.printed != want {
		t.Errorf("the builder printed %q, want %q", a.printed, want)
	}
	if dt.config != da.config || dt.layer != da.layer || dt.diffID != da.diffID {
		t.Errorf("the tarball's digests %+v differ from the layout's %+v", dt, da)
	}
	if d := digestsOf(t, b.fromPath); d != da {
		t.Errorf("the second build's layout digests %+v differ from the first's %+v", d, da)
	}
	if d := digestsOf(t, b.fromTar); d != dt {
		t.Errorf("the second build's tarball digests %+v differ from the first's %+v", d, dt)
	}
	if !bytes.Equal(a.indexJSON, b.indexJSON) {
		t.Errorf("the layouts' index.json differ:\n%s\n%s", a.indexJSON, b.indexJSON)
	}
	if a.tarSum != b.tarSum {
		t.Errorf("the tarballs differ: sha256 %x and %x", a.tarSum, b.tarSum)
	}

	checkConfig(t, a.fromPath, created)
	start = time.Now()
	files := extract(t, a.fromTar, created, filepath.Join(t.TempDir(), "rootfs"))
	t.Logf("checked and extracted the layer in %s", time.Since(start).Round(time.Millisecond))
	checkFiles(t, files)
	runVersion(t, filepath.Join(files, "crproxy"))
	start = time.Now()
	push(t, a.fromPath, ref, da.manifest)
	push(t, a.fromTar, ref, dt.manifest)
	t.Logf("pushed and pulled both in %s", time.Since(start).Round(time.Millisecond))
}

func checkConfig(t *testing.T, img v1.Image, created time.Time) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/crproxy"}) || len(c.Cmd) != 0 {
		t.Errorf("Entrypoint %q, Cmd %q; want [/crproxy] and none (the chart passes serve and its flags)", c.Entrypoint, c.Cmd)
	}
	if c.WorkingDir != "/var/lib/crproxy" {
		t.Errorf("WorkingDir = %q", c.WorkingDir)
	}
	if _, ok := c.ExposedPorts["9443/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v, want 9443/tcp", c.ExposedPorts)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created %s, want %s", cf.Created.Time, created)
	}
	const p = "org.opencontainers.image."
	for k, want := range map[string]string{
		"title":    "crproxy",
		"source":   "https://github.com/crproxy/crproxy",
		"version":  testVersion,
		"revision": revision,
		"licenses": "NOASSERTION",
		"created":  "2024-05-06T07:08:09Z",
	} {
		if got := c.Labels[p+k]; got != want {
			t.Errorf("label %s%s = %q, want %q", p, k, got, want)
		}
	}
	if c.Labels[p+"description"] == "" {
		t.Errorf("no label %sdescription", p)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("media types: manifest %s, config %s, layers %v; want OCI's", m.MediaType, m.Config.MediaType, m.Layers)
	}
}

// extract writes the layer's files into dir and checks its tar entries:
// sorted, with the fixed mtime and the owners and modes crproxy needs.
func extract(t *testing.T, img v1.Image, created time.Time, dir string) string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// The digest of what is read, and of what it unzips to, against the
	// layer's digest and diff ID.
	digest, diffID := sha256.New(), sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(rc, digest))
	if err != nil {
		t.Fatal(err)
	}
	unzipped := io.TeeReader(zr, diffID)
	want := map[string]struct {
		mode     int64
		uid, gid int
	}{
		"crproxy":                           {0o755, 0, 0},
		"etc/passwd":                        {0o644, 0, 0},
		"etc/group":                         {0o644, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0},
		"tmp/":                              {0o1777, 0, 0},
		"home/nonroot/":                     {0o700, 65532, 65532},
		"var/lib/crproxy/":                  {0o755, 65532, 65532},
	}
	var names []string
	tr := tar.NewReader(unzipped)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(created) {
			t.Errorf("%s: mtime %s, want %s", h.Name, h.ModTime, created)
		}
		if len(h.PAXRecords) > 0 {
			t.Errorf("%s: PAX records %v", h.Name, h.PAXRecords)
		}
		if w, ok := want[h.Name]; ok {
			if h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.gid {
				t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", h.Name, h.Mode, h.Uid, h.Gid, w.mode, w.uid, w.gid)
			}
			delete(want, h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("%s: unexpected type %c", h.Name, h.Typeflag)
		}
	}
	if _, err := io.Copy(io.Discard, unzipped); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	d := digestsOf(t, img)
	for what, c := range map[string]struct {
		got  hash.Hash
		want v1.Hash
	}{"digest": {digest, d.layer}, "diff ID": {diffID, d.diffID}} {
		if got := hex.EncodeToString(c.got.Sum(nil)); got != c.want.Hex {
			t.Errorf("the layer's %s is sha256:%s, want %s", what, got, c.want)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("the layer's entries are not sorted: %q", names)
	}
	for n := range want {
		t.Errorf("the layer has no %s", n)
	}
	return dir
}

func checkFiles(t *testing.T, dir string) {
	t.Helper()
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if p := read("etc/passwd"); !strings.Contains(p, "\nnonroot:x:65532:65532:nonroot:/home/nonroot:") {
		t.Errorf("/etc/passwd has no user nonroot 65532:\n%s", p)
	}
	if g := read("etc/group"); !strings.Contains(g, "\nnonroot:x:65532:") {
		t.Errorf("/etc/group has no group nonroot 65532:\n%s", g)
	}

	// Every unconstrained root of the fallback bundle, and nothing else.
	var want []string
	for r := range bundle.Roots() {
		if r.Constraint == nil {
			want = append(want, string(r.Certificate))
		}
	}
	var got []string
	rest := []byte(read("etc/ssl/certs/ca-certificates.crt"))
	for {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			t.Fatalf("the CA bundle's certificate %d: %v", len(got), err)
		}
		got = append(got, string(blk.Bytes))
	}
	if len(bytes.TrimSpace(rest)) != 0 || len(want) < 100 || !slices.Equal(got, want) {
		t.Errorf("the CA bundle has %d certificates (and %d bytes after them), want the %d unconstrained roots of the bundle", len(got), len(rest), len(want))
	}
	t.Logf("the CA bundle holds %d roots", len(got))
}

// runVersion runs the image's binary: `crproxy version` reports the
// version it was stamped with, for Linux on this architecture.
func runVersion(t *testing.T, bin string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the image's binary runs on Linux, not %s", runtime.GOOS)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("crproxy version: %v\n%s", err, out)
	}
	want := fmt.Sprintf("crproxy %s (%s, linux/%s)\n", testVersion, runtime.Version(), runtime.GOARCH)
	if string(out) != want {
		t.Errorf("crproxy version printed %q, want %q", out, want)
	}
}

// push does what `crane push bin/image/crproxy.tar REF` (or of the layout)
// does, to a registry on loopback, and pulls the image back by tag.
func push(t *testing.T, img v1.Image, ref name.Tag, digest v1.Hash) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	to, err := name.NewTag(host+"/"+ref.RepositoryStr()+":"+ref.TagStr(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(to, img); err != nil {
		t.Fatalf("push to %s: %v", to, err)
	}
	pulled, err := remote.Image(to)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := pulled.Digest(); err != nil || d != digest {
		t.Errorf("pulled %s: digest %s (%v), want %s", to, d, err, digest)
	}
	if err := validate.Image(pulled, validate.Fast); err != nil {
		t.Errorf("the pulled image is not valid: %v", err)
	}
}

// hello writes a Go program that does nothing into dir.
func hello(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildPlatforms checks that the image's platform is the binary's, for
// other architectures than this machine's (`make image GOARCH=...`).
func TestBuildPlatforms(t *testing.T) {
	dir := t.TempDir()
	hello(t, dir)
	for _, c := range []struct {
		env           []string
		arch, variant string
	}{
		{[]string{"GOARCH=arm64"}, "arm64", ""},
		{[]string{"GOARCH=arm", "GOARM=7"}, "arm", "v7"},
	} {
		bin := filepath.Join(dir, c.arch)
		if err := goBuild(dir, ".", bin, append([]string{"CGO_ENABLED=0", "GOOS=linux"}, c.env...), "-trimpath"); err != nil {
			t.Fatal(err)
		}
		img, err := image.Build(image.Options{Binary: bin, Created: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != c.arch || cf.Variant != c.variant {
			t.Errorf("%v: platform %s/%s/%s, want linux/%s/%s", c.env, cf.OS, cf.Architecture, cf.Variant, c.arch, c.variant)
		}
	}
}

// TestBuildRefuses checks that only a static, -trimpath Linux Go binary
// makes an image.
func TestBuildRefuses(t *testing.T) {
	dir := t.TempDir()
	hello(t, dir)
	untrimmed := filepath.Join(dir, "untrimmed")
	if err := goBuild(dir, ".", untrimmed, staticLinux); err != nil {
		t.Fatal(err)
	}
	notGo := filepath.Join(dir, "main.go")
	for bin, want := range map[string]string{untrimmed: "-trimpath", notGo: "not a Go binary"} {
		_, err := image.Build(image.Options{Binary: bin, Created: time.Unix(0, 0)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build(%s) = %v, want an error about %s", filepath.Base(bin), err, want)
		}
	}
}

// TestReference checks the defaults and the overrides of Reference.
func TestReference(t *testing.T) {
	img := chartImage(t)
	i := strings.LastIndex(img, ":")
	repo, tag := img[:i], img[i+1:]
	for _, c := range []struct{ repo, tag, want string }{
		{"", "", repo + ":" + tag},
		{"registry.example:5000/team/crproxy", "", "registry.example:5000/team/crproxy:" + tag},
		{"", "v9.9.9", repo + ":v9.9.9"},
		{"example.com/crproxy", "dev", "example.com/crproxy:dev"},
	} {
		ref, err := image.Reference(chartDir, c.repo, c.tag)
		if err != nil {
			t.Errorf("Reference(%q, %q): %v", c.repo, c.tag, err)
			continue
		}
		if ref.Name() != c.want {
			t.Errorf("Reference(%q, %q) = %s, want %s", c.repo, c.tag, ref.Name(), c.want)
		}
	}
	if _, err := image.Reference(t.TempDir(), "", ""); err == nil {
		t.Error("Reference without a chart and without overrides: no error")
	}
}
