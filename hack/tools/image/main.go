// Command image builds crproxy's OCI image from a static binary, without a
// daemon: `make image` runs it. See internal/image for what the image holds.
//
//	go run ./hack/tools/image -binary bin/image/crproxy -out bin/image \
//	    -version v0.1.0 -revision $(git rev-parse HEAD) -epoch $(git log -1 --format=%ct)
//
// It writes OUT/crproxy-oci (an OCI image layout) and OUT/crproxy.tar (a
// tarball for `docker load` and `crane push`), and prints the reference and
// the manifest digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/crproxy/crproxy/internal/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		o          image.Options
		out, chart string
		repo, tag  string
		epoch      string
	)
	flag.StringVar(&o.Binary, "binary", "", "the static Linux crproxy binary (required)")
	flag.StringVar(&out, "out", "bin/image", "the folder for crproxy-oci/ and crproxy.tar")
	flag.StringVar(&chart, "chart", "deploy/helm/crproxy", "the Helm chart whose image the defaults of -repository and -tag are")
	flag.StringVar(&repo, "repository", "", "the image repository; empty: the chart's image.repository")
	flag.StringVar(&tag, "tag", "", "the image tag; empty: the chart's appVersion")
	flag.StringVar(&o.Version, "version", "", "org.opencontainers.image.version (the binary's version)")
	flag.StringVar(&o.Revision, "revision", "", "org.opencontainers.image.revision (the commit)")
	flag.StringVar(&o.Source, "source", image.Source, "org.opencontainers.image.source")
	flag.StringVar(&o.Licenses, "licenses", "NOASSERTION", "org.opencontainers.image.licenses (SPDX)")
	flag.StringVar(&epoch, "epoch", os.Getenv("SOURCE_DATE_EPOCH"), "the created time and every file's mtime, in Unix seconds (default $SOURCE_DATE_EPOCH)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if epoch == "" {
		return fmt.Errorf("-epoch or SOURCE_DATE_EPOCH is required, for a reproducible image")
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("-epoch %q: %w", epoch, err)
	}
	o.Created = time.Unix(secs, 0)

	ref, err := image.Reference(chart, repo, tag)
	if err != nil {
		return err
	}
	img, err := image.Build(o)
	if err != nil {
		return err
	}
	if err := image.Write(img, ref, out); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", ref.Name(), d)
	return nil
}
