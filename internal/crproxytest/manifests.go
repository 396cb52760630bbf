package crproxytest

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// manifests holds the documentation's manifests (its CRD, target RBAC and
// client examples, each file naming its source) and the variants tests
// need (a status subresource, printer columns, other groups).
//
//go:embed manifests/*.yaml
var manifests embed.FS

// Manifest returns the embedded manifest file name (e.g.
// "myresource-crd.yaml"). It panics on an unknown name: the set is fixed at
// build time, so that is a programming error.
func Manifest(name string) string {
	data, err := manifests.ReadFile("manifests/" + name)
	if err != nil {
		panic(fmt.Sprintf("crproxytest: no manifest %q", name))
	}
	return string(data)
}

// Apply applies the named manifests to s with kubectl, as its admin.
func Apply(ctx context.Context, s *localcluster.APIServer, names ...string) error {
	docs := make([]string, 0, len(names))
	for _, name := range names {
		docs = append(docs, Manifest(name))
	}
	_, err := ApplyYAML(ctx, s, strings.Join(docs, "\n---\n"))
	return err
}

// ApplyYAML applies manifests given as YAML text to s with kubectl, as its
// admin, and returns kubectl's output (warnings included), in the error
// too when it fails.
func ApplyYAML(ctx context.Context, s *localcluster.APIServer, manifests string) (string, error) {
	cmd := s.KubectlCmd(ctx, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifests)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl apply: %w\n%s", err, out)
	}
	return string(out), nil
}

// InstallCRD applies the named manifest to s and waits until the CRD that
// is its first document is established.
func InstallCRD(ctx context.Context, s *localcluster.APIServer, name string) error {
	first, _, _ := strings.Cut(Manifest(name), "\n---")
	var crd struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(first), &crd); err != nil || crd.Kind != "CustomResourceDefinition" {
		return fmt.Errorf("manifest %s does not start with a CRD (%v)", name, err)
	}
	if err := Apply(ctx, s, name); err != nil {
		return err
	}
	if out, err := s.Kubectl(ctx, "wait", "--for=condition=Established", "crd/"+crd.Metadata.Name, "--timeout=60s"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}
