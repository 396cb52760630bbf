package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validate(t *testing.T, yaml string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := NewCommand()
	cmd.SilenceUsage = true
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"validate", path})
	err := cmd.Execute()
	return out.String(), err
}

func TestValidatePrintsEachProblemWithItsKey(t *testing.T) {
	out, err := validate(t, `client: {name: client}
targets: [{name: target}]
experimental:
  proxy:
    customResources:
      myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: nowhere}}
      bad-key: {enabled: true, targetVirtualCluster: {name: target}, accessResources: some}
`)
	if err == nil {
		t.Fatalf("an invalid configuration validated:\n%s", out)
	}
	for _, want := range []string{"problem(s)", "nowhere", "bad-key", "accessResources"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

func TestValidateSummarizesAValidConfiguration(t *testing.T) {
	out, err := validate(t, `client: {name: client}
targets: [{name: target, kubeconfig: target.kubeconfig}]
experimental:
  proxy:
    customResources:
      myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}}
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "loft:vcluster:p-default:client") || !strings.Contains(out, "example.com/v1 -> target default/target (owned)") {
		t.Fatalf("summary:\n%s", out)
	}
}

// Every example configuration in examples/ is valid.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("../../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		cmd := NewCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"validate", f})
		if err := cmd.Execute(); err != nil {
			t.Errorf("%s: %v\n%s", f, err, out.String())
		}
	}
}
