package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
)

// validationGroup is the group of the "Kubectl validation" cases' CRDs
// (the kubernetes e2e framework's is "<BaseName>.example.com").
const validationGroup = "kubectl.example.com"

// validationCase is one CRD case of test/e2e/kubectl's "Kubectl
// validation": the CRD's schema, and what kubectl create and apply
// --validate=true of custom resources must do against it. run fails the
// test as the upstream case does.
type validationCase struct {
	name   string
	schema func(t *testing.T, source string) map[string]any
	run    func(t *testing.T, v *validationRun)
}

// validationRun is one case against one cluster users work with (natively
// the target itself, else the client through crproxy).
type validationRun struct {
	ctx          context.Context
	users        *localcluster.APIServer
	namespace    string
	plural, kind string
}

// meta is the upstream metaPattern for name.
func (v *validationRun) meta(name string) string {
	return fmt.Sprintf(`"kind":%q,"apiVersion":"%s/v1","metadata":{"name":%q}`, v.kind, validationGroup, name)
}

// kubectl runs kubectl in the run's namespace with stdin.
func (v *validationRun) kubectl(stdin string, args ...string) (string, error) {
	return kubectlWithStdin(v.ctx, v.users, stdin, append(args, "--namespace", v.namespace)...)
}

// createApply is upstream's createApplyCustomResource: the custom
// resource created and applied with --validate=true without being
// refused, deleted after each.
func (v *validationRun) createApply(resource, name string) error {
	if out, err := v.kubectl(resource, "create", "--validate=true", "-f", "-"); err != nil {
		return fmt.Errorf("failed to create CR %s in namespace %s: %w: %s", resource, v.namespace, err, out)
	}
	if out, err := v.kubectl("", "delete", v.plural, name); err != nil {
		return fmt.Errorf("failed to delete CR %s: %w: %s", name, err, out)
	}
	if out, err := v.kubectl(resource, "apply", "--validate=true", "-f", "-"); err != nil {
		return fmt.Errorf("failed to apply CR %s in namespace %s: %w: %s", resource, v.namespace, err, out)
	}
	if out, err := v.kubectl("", "delete", v.plural, name); err != nil {
		return fmt.Errorf("failed to delete CR %s: %w: %s", name, err, out)
	}
	return nil
}

// upstreamSchema reads the YAML schema var name of test/e2e/kubectl's
// kubectl.go in source, so that the cases use the version's own.
func upstreamSchema(t *testing.T, source, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(source, "test", "e2e", "kubectl", "kubectl.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)var " + name + " = \\[\\]byte\\(`(.*?)`\\)").FindSubmatch(data)
	if m == nil {
		t.Fatalf("no var %s in test/e2e/kubectl/kubectl.go", name)
	}
	var schema map[string]any
	if err := yaml.Unmarshal(m[1], &schema); err != nil {
		t.Fatal(err)
	}
	return schema
}

// kubectlValidationCases are test/e2e/kubectl's "Kubectl validation"
// cases of custom resources, with their assertions. Upstream sleeps 10 s
// after creating each CRD "for potential crd openapi publishing"; here
// the CRD's resource is in the users' discovery first, and kubectl
// validates on the server (fieldValidation=Strict).
var kubectlValidationCases = []validationCase{
	{
		name: "should create/apply a CR with unknown fields for CRD with no validation schema",
		schema: func(*testing.T, string) map[string]any {
			return map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
		},
		run: func(t *testing.T, v *validationRun) {
			randomCR := fmt.Sprintf(`{%s,"a":{"b":[{"c":"d"}]}}`, v.meta("test-cr"))
			if err := v.createApply(randomCR, "test-cr"); err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		name: "should create/apply a valid CR for CRD with validation schema",
		schema: func(t *testing.T, source string) map[string]any {
			return upstreamSchema(t, source, "schemaFoo")
		},
		run: func(t *testing.T, v *validationRun) {
			validCR := fmt.Sprintf(`{%s,"spec":{"bars":[{"name":"test-bar"}]}}`, v.meta("test-cr"))
			if err := v.createApply(validCR, "test-cr"); err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		name: "should create/apply an invalid/valid CR with arbitrary-extra properties for CRD with partially-specified validation schema",
		schema: func(t *testing.T, source string) map[string]any {
			s := upstreamSchema(t, source, "schemaFoo")
			s["x-kubernetes-preserve-unknown-fields"] = true
			return s
		},
		run: func(t *testing.T, v *validationRun) {
			invalidArbitraryCR := fmt.Sprintf(`{%s,"spec":{"bars":[{"name":"test-bar"}],"extraProperty":"arbitrary-value"}}`, v.meta("test-cr"))
			err := v.createApply(invalidArbitraryCR, "test-cr")
			if err == nil {
				t.Fatal("creating custom resource: no error")
			}
			if !strings.Contains(err.Error(), `unknown field "spec.extraProperty"`) {
				t.Fatalf("incorrect error from createApplyCustomResource: %v", err)
			}
			validArbitraryCR := fmt.Sprintf(`{%s,"spec":{"bars":[{"name":"test-bar"}]},"extraProperty":"arbitrary-value"}`, v.meta("test-cr"))
			if err := v.createApply(validArbitraryCR, "test-cr"); err != nil {
				t.Fatalf("creating custom resource: %v", err)
			}
		},
	},
	{
		name: "should detect unknown metadata fields in both the root and embedded object of a CR",
		schema: func(t *testing.T, source string) map[string]any {
			return upstreamSchema(t, source, "schemaFooEmbedded")
		},
		run: func(t *testing.T, v *validationRun) {
			const embeddedCRPattern = `

{%s,
  "spec": {
    "template": {
      "apiVersion": "foo/v1",
      "kind": "Sub",
      "metadata": {
        %s
        "name": "subobject",
        "namespace": "%s"
      }
    }
  }
}`
			unknownMeta := fmt.Sprintf(`"kind":%q,"apiVersion":"%s/v1","metadata":{"unknownMeta": "foo", "name":"test-cr"}`, v.kind, validationGroup)
			out, err := v.kubectl(fmt.Sprintf(embeddedCRPattern, unknownMeta, "", v.namespace), "create", "--validate=true", "-f", "-")
			if err == nil {
				t.Fatal("unexpected nil error when creating CR with unknown root metadata field")
			}
			if !(strings.Contains(out, `unknown field "unknownMeta"`) || strings.Contains(out, `unknown field "metadata.unknownMeta"`)) {
				t.Fatalf("error missing root unknown metadata field, got: %v: %s", err, out)
			}
			if strings.Contains(out, `unknown field "namespace"`) || strings.Contains(out, `unknown field "metadata.namespace"`) {
				t.Fatalf("unexpected error, CR's root metadata namespace field unrecognized: %s", out)
			}
			out, err = v.kubectl(fmt.Sprintf(embeddedCRPattern, v.meta("test-cr-embedded"), `"unknownMetaEmbedded": "bar",`, v.namespace), "create", "--validate=true", "-f", "-")
			if err == nil {
				t.Fatal("unexpected nil error when creating CR with unknown embedded metadata field")
			}
			if !(strings.Contains(out, `unknown field "unknownMetaEmbedded"`) || strings.Contains(out, `unknown field "spec.template.metadata.unknownMetaEmbedded"`)) {
				t.Fatalf("error missing embedded unknown metadata field, got: %v: %s", err, out)
			}
			if strings.Contains(out, `unknown field "namespace"`) || strings.Contains(out, `unknown field "spec.template.metadata.namespace"`) {
				t.Fatalf("unexpected error, CR's embedded metadata namespace field unrecognized: %s", out)
			}
		},
	},
}

// runValidationCase installs c's CRD at crds under a name of its own
// (index i), waits until users' discovery lists its resource, runs c in a
// new namespace of users, and removes the CRD.
func runValidationCase(t *testing.T, ctx context.Context, source string, c validationCase, i int, users, crds *localcluster.APIServer) {
	t.Helper()
	v := &validationRun{ctx: ctx, users: users, namespace: fmt.Sprintf("kubectl-validation-%d", i),
		plural: fmt.Sprintf("e2e-test-kubectl-%d-crds", i), kind: fmt.Sprintf("E2e-test-kubectl-%d-crd", i)}
	name := v.plural + "." + validationGroup
	crd := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"group": validationGroup,
			"scope": "Namespaced",
			"names": map[string]any{"plural": v.plural, "singular": strings.TrimSuffix(v.plural, "s"), "kind": v.kind, "listKind": v.kind + "List"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": c.schema(t, source)}}},
		},
	}
	manifest, err := json.Marshal(crd)
	if err != nil {
		t.Fatal(err)
	}
	kubectlStdin(t, ctx, crds, string(manifest), "create", "-f", "-")
	defer kubectl(t, ctx, crds, "delete", "crd", name)
	kubectl(t, ctx, crds, "wait", "--for=condition=Established", "--timeout=30s", "crd/"+name)
	crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
		// api-resources fails while any group's discovery does: its list
		// tells anyway.
		if out, _ := users.Kubectl(ctx, "api-resources", "--api-group="+validationGroup, "-o", "name"); !strings.Contains(out, name) {
			return fmt.Sprintf("%s is not in the users' discovery after its CRD was established", v.plural)
		}
		return ""
	})
	kubectl(t, ctx, users, "create", "namespace", v.namespace)
	c.run(t, v)
}
