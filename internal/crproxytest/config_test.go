package crproxytest

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/pkg/config"
)

// The configuration the kit writes is the one crproxy reads back.
func TestWriteConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	client := &localcluster.APIServer{KubeconfigPath: filepath.Join(dir, "client.kubeconfig")}
	target := &localcluster.APIServer{KubeconfigPath: filepath.Join(dir, "target.kubeconfig")}
	for _, s := range []*localcluster.APIServer{client, target} {
		if err := os.WriteFile(s.KubeconfigPath, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := Config("team-a", client, target)
	path := filepath.Join(dir, "crproxy.yaml")
	if err := WriteConfig(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want.Default()
	got.Default()
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", *got, want)
	}
	if gvs := got.GroupVersions(); len(gvs) != 1 || gvs[0].GroupVersion.String() != "example.com/v1" || gvs[0].Access != config.AccessOwned {
		t.Errorf("group versions %+v, want example.com/v1 in owned mode", gvs)
	}

	bad := want
	bad.Targets = nil
	if err := WriteConfig(path, bad); err == nil || !strings.Contains(err.Error(), "target") {
		t.Errorf("a configuration without its target: %v, want crproxy's refusal", err)
	}
}

// Every embedded manifest is YAML of Kubernetes objects, and InstallCRD's
// manifests start with a CRD.
func TestManifests(t *testing.T) {
	names, err := fs.Glob(manifests, "manifests/*.yaml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, name := range names {
		name = strings.TrimPrefix(name, "manifests/")
		for i, doc := range strings.Split(Manifest(name), "\n---") {
			var obj struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj.Kind == "" || obj.APIVersion == "" {
				t.Errorf("%s, document %d: not a Kubernetes object (%v)", name, i, err)
			}
			if i == 0 && strings.HasSuffix(name, "-crd.yaml") && obj.Kind != "CustomResourceDefinition" {
				t.Errorf("%s starts with a %s, not a CRD", name, obj.Kind)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Manifest of an unknown name did not panic")
		}
	}()
	Manifest("no-such.yaml")
}
