package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

var exampleV1 = schema.GroupVersion{Group: "example.com", Version: "v1"}

// TestDocumentationExamples parses the Resource Proxy documentation's
// examples, each with crproxy's client and targets sections added, and checks
// the resolved group/versions.
func TestDocumentationExamples(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		identity string
		want     []GroupVersionProxy
	}{
		{
			name: "basic",
			doc: `client:
  project: default
  name: client
  kubeconfig: client.kubeconfig
targets:
  - name: target
    kubeconfig: target.kubeconfig
experimental:
  proxy:
    customResources:
      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster:
          name: "target"
`,
			identity: "loft:vcluster:p-default:client",
			want: []GroupVersionProxy{{
				GroupVersion: exampleV1,
				Target:       Target{Name: "target", Project: "default", Kubeconfig: "target.kubeconfig"},
				Access:       AccessOwned,
				Resources:    []string{"myresources"},
			}},
		},
		{
			name: "cross-project",
			doc: `client:
  name: client
targets:
  - name: target
    project: other-project
    kubeconfig: other.kubeconfig
experimental:
  proxy:
    customResources:
      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster:
          name: "target"
          project: "other-project" # Target is in a different project
`,
			identity: "loft:vcluster:p-default:client",
			want: []GroupVersionProxy{{
				GroupVersion: exampleV1,
				Target:       Target{Name: "target", Project: "other-project", Kubeconfig: "other.kubeconfig"},
				Access:       AccessOwned,
				Resources:    []string{"myresources"},
			}},
		},
		{
			name: "access mode owned by default",
			doc: base + `experimental:
  proxy:
    customResources:
      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster:
          name: "target"
        # accessResources defaults to "owned" - only see resources we created
`,
			identity: "loft:vcluster:p-default:client",
			want: []GroupVersionProxy{{
				GroupVersion: exampleV1,
				Target:       Target{Name: "target", Project: "default", Kubeconfig: "target.kubeconfig"},
				Access:       AccessOwned,
				Resources:    []string{"myresources"},
			}},
		},
		{
			name: "access mode all",
			doc: base + `experimental:
  proxy:
    customResources:
      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster:
          name: "target"
        accessResources: all # Can see all resources, not just owned ones
`,
			identity: "loft:vcluster:p-default:client",
			want: []GroupVersionProxy{{
				GroupVersion: exampleV1,
				Target:       Target{Name: "target", Project: "default", Kubeconfig: "target.kubeconfig"},
				Access:       AccessAll,
				Resources:    []string{"myresources"},
			}},
		},
		{
			name: "wildcard, other project for the client, disabled entries left out",
			doc: `client: {name: ci, project: team}
targets:
  - {name: target, kubeconfig: target.kubeconfig}
` + crs(`'*.example.com/v1': {enabled: true, targetVirtualCluster: {name: target}}`,
				`otherresources.test.io/v2: {enabled: false, targetVirtualCluster: {name: elsewhere}}`),
			identity: "loft:vcluster:p-team:ci",
			want: []GroupVersionProxy{{
				GroupVersion: exampleV1,
				Target:       Target{Name: "target", Project: "team", Kubeconfig: "target.kubeconfig"},
				Access:       AccessOwned,
				Wildcard:     true,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Client.Identity(); got != tt.identity {
				t.Errorf("Identity() = %q, want %q", got, tt.identity)
			}
			if got := c.GroupVersions(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GroupVersions() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestLoadMultiTarget(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "multi-target.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := []GroupVersionProxy{
		{
			GroupVersion: exampleV1,
			Target:       Target{Name: "target-a", Project: "default", Kubeconfig: filepath.Join(dir, "target-a.kubeconfig")},
			Access:       AccessOwned,
			Resources:    []string{"myresources", "secondaryresources"},
		},
		{
			GroupVersion: schema.GroupVersion{Group: "test.io", Version: "v2"},
			Target:       Target{Name: "target-b", Project: "default", Kubeconfig: filepath.Join(dir, "target-b.kubeconfig")},
			Access:       AccessOwned,
			Resources:    []string{"additionalresources", "otherresources"},
		},
	}
	if got := c.GroupVersions(); !reflect.DeepEqual(got, want) {
		t.Errorf("GroupVersions() =\n%+v\nwant\n%+v", got, want)
	}
	if got, want := c.Client.Kubeconfig, filepath.Join(dir, "client.kubeconfig"); got != want {
		t.Errorf("client kubeconfig = %q, want %q", got, want)
	}
	if got := c.Client.Identity(); got != "loft:vcluster:p-default:client" {
		t.Errorf("Identity() = %q", got)
	}
}

// TestLoadMultiClient loads the documentation's two clients of one target:
// same routing, different identities and owner labels.
func TestLoadMultiClient(t *testing.T) {
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"team-a", "team-b"} {
		t.Run(team, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", "client-"+team+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			want := []GroupVersionProxy{{
				GroupVersion: exampleV1,
				Target:       Target{Name: "orchestrator", Project: "default", Kubeconfig: filepath.Join(dir, "orchestrator.kubeconfig")},
				Access:       AccessOwned,
				Resources:    []string{"myresources"},
			}}
			if got := c.GroupVersions(); !reflect.DeepEqual(got, want) {
				t.Errorf("GroupVersions() =\n%+v\nwant\n%+v", got, want)
			}
			if got, want := c.Client.Identity(), "loft:vcluster:p-default:"+team; got != want {
				t.Errorf("Identity() = %q, want %q", got, want)
			}
			wantLabels := map[string]string{LabelOwnerVCluster: team, LabelOwnerProject: "default"}
			if got := c.Client.OwnerLabels(); !reflect.DeepEqual(got, wantLabels) {
				t.Errorf("OwnerLabels() = %v, want %v", got, wantLabels)
			}
		})
	}
}

// TestLoadFullVClusterYAML loads a vcluster.yaml with many keys crproxy does
// not read.
func TestLoadFullVClusterYAML(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "vcluster-full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := []GroupVersionProxy{
		{
			GroupVersion: exampleV1,
			Target:       Target{Name: "target", Project: "default", Kubeconfig: "/etc/crproxy/target.kubeconfig"},
			Access:       AccessOwned,
			Resources:    []string{"myresources"},
		},
		{
			GroupVersion: schema.GroupVersion{Group: "test.io", Version: "v2"},
			Target:       Target{Name: "shared", Project: "other-project", Kubeconfig: filepath.Join(dir, "shared.kubeconfig")},
			Access:       AccessAll,
			Resources:    []string{"otherresources"},
		},
	}
	if got := c.GroupVersions(); !reflect.DeepEqual(got, want) {
		t.Errorf("GroupVersions() =\n%+v\nwant\n%+v", got, want)
	}
	if c.Client.Kubeconfig != "" {
		t.Errorf("empty client kubeconfig (in-cluster) became %q", c.Client.Kubeconfig)
	}
	if c.Platform != nil {
		t.Errorf("vCluster's platform section (project only) became crproxy's: %+v", *c.Platform)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !os.IsNotExist(err) {
		t.Errorf("Load of a missing file: %v, want a not-exist error", err)
	}
}

func TestLoadInvalidYAMLNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("client: {name: a, name: b}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": invalid YAML") {
		t.Errorf("Load error %v does not start with the file name", err)
	}
}

func TestDefault(t *testing.T) {
	c := &Config{
		Client:  Client{Name: "client"},
		Targets: []Target{{Name: "a", Kubeconfig: "a"}, {Name: "b", Project: "other", Kubeconfig: "b"}},
		Experimental: Experimental{Proxy: Proxy{CustomResources: map[string]CustomResourceProxy{
			"myresources.example.com/v1": {Enabled: true, TargetVirtualCluster: VirtualClusterRef{Name: "a"}},
			"others.example.com/v2":      {TargetVirtualCluster: VirtualClusterRef{Name: "b", Project: "other"}, AccessResources: AccessAll},
		}}},
	}
	c.Default()
	want := &Config{
		Client:  Client{Name: "client", Project: "default"},
		Targets: []Target{{Name: "a", Project: "default", Kubeconfig: "a"}, {Name: "b", Project: "other", Kubeconfig: "b"}},
		Experimental: Experimental{Proxy: Proxy{CustomResources: map[string]CustomResourceProxy{
			"myresources.example.com/v1": {Enabled: true, TargetVirtualCluster: VirtualClusterRef{Name: "a", Project: "default"}, AccessResources: AccessOwned},
			"others.example.com/v2":      {TargetVirtualCluster: VirtualClusterRef{Name: "b", Project: "other"}, AccessResources: AccessAll},
		}}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", c, want)
	}
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		client Client
		want   string
	}{
		{Client{Project: "default", Name: "client"}, "loft:vcluster:p-default:client"},
		{Client{Name: "client"}, "loft:vcluster:p-default:client"},
		{Client{Project: "other-project", Name: "team-a"}, "loft:vcluster:p-other-project:team-a"},
	}
	for _, tt := range tests {
		if got := tt.client.Identity(); got != tt.want {
			t.Errorf("%+v.Identity() = %q, want %q", tt.client, got, tt.want)
		}
	}
	if got := Identity("default", "team-b"); got != "loft:vcluster:p-default:team-b" {
		t.Errorf("Identity = %q", got)
	}
	labels := Client{Name: "team-a"}.OwnerLabels()
	want := map[string]string{"vcluster.com/owner-vcluster": "team-a", "vcluster.com/owner-project": "default"}
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("OwnerLabels() = %v, want %v", labels, want)
	}
}
