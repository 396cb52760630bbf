package config

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestParsePlatform covers the platform section: crproxy's kubeconfig read,
// vCluster's keys beside it ignored, typos and empty values reported.
func TestParsePlatform(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		// kubeconfig is the Platform.Kubeconfig wanted; "-" wants no
		// Platform at all.
		kubeconfig string
		want       []problem
	}{
		{name: "no section", doc: base + crs(basicCR), kubeconfig: "-"},
		{name: "kubeconfig", doc: base + crs(basicCR) + "platform:\n  kubeconfig: platform.kubeconfig\n", kubeconfig: "platform.kubeconfig"},
		{
			name:       "vCluster's keys beside kubeconfig",
			doc:        base + crs(basicCR) + "platform: {project: default, apiKey: {secretName: key}, kubeconfig: /etc/platform.kubeconfig}\n",
			kubeconfig: "/etc/platform.kubeconfig",
		},
		{name: "vCluster's section only: no check", doc: base + crs(basicCR) + "platform: {project: default}\n", kubeconfig: "-"},
		{name: "empty section: no check", doc: base + crs(basicCR) + "platform: {}\n", kubeconfig: "-"},
		{name: "null section: no check", doc: base + crs(basicCR) + "platform:\n", kubeconfig: "-"},
		{
			name: "empty kubeconfig",
			doc:  base + crs(basicCR) + "platform: {kubeconfig: \"\"}\n",
			want: []problem{{"platform.kubeconfig", field.ErrorTypeRequired,
				"set it to the path of a kubeconfig for the platform's management cluster, where crproxy checks that the client may use each target"}},
		},
		{
			name: "null kubeconfig",
			doc:  base + crs(basicCR) + "platform:\n  kubeconfig:\n",
			want: []problem{{"platform.kubeconfig", field.ErrorTypeRequired, "or remove it to check nothing"}},
		},
		{
			name: "vcluster spelling kubeConfig",
			doc:  base + crs(basicCR) + "platform: {kubeConfig: platform.kubeconfig}\n",
			want: []problem{{"platform.kubeConfig", field.ErrorTypeInvalid, `unknown field; did you mean "kubeconfig"?`}},
		},
		{
			name: "typo of kubeconfig",
			doc:  base + crs(basicCR) + "platform: {project: default, kubeconfg: platform.kubeconfig}\n",
			want: []problem{{"platform.kubeconfg", field.ErrorTypeInvalid, `did you mean "kubeconfig"?`}},
		},
		{
			name: "kubeconfig a number",
			doc:  base + crs(basicCR) + "platform: {kubeconfig: 1}\n",
			want: []problem{{"platform.kubeconfig", field.ErrorTypeInvalid, "must be a string, not a number; put the value in quotes"}},
		},
		{
			name: "kubeconfig a mapping",
			doc:  base + crs(basicCR) + "platform: {kubeconfig: {path: x}}\n",
			want: []problem{{"platform.kubeconfig", field.ErrorTypeInvalid, "must be a string, not a mapping"}},
		},
		{
			name: "section a string",
			doc:  base + crs(basicCR) + "platform: platform.kubeconfig\n",
			want: []problem{{"platform", field.ErrorTypeInvalid, "must be a mapping, not a string"}},
		},
		{
			name: "platform problems come last",
			doc:  "client: {name: client}\ntargets: [{name: target}]\n" + crs(basicCR) + "platform: {kubeconfig: \"\"}\n",
			want: []problem{
				{"targets[0].kubeconfig", field.ErrorTypeRequired, ""},
				{"platform.kubeconfig", field.ErrorTypeRequired, ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want != nil {
				checkProblems(t, parseProblems(t, tt.doc), tt.want)
				return
			}
			c, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.kubeconfig == "-" && c.Platform != nil:
				t.Errorf("Platform = %+v, want nil", *c.Platform)
			case tt.kubeconfig != "-" && c.Platform == nil:
				t.Errorf("Platform = nil, want kubeconfig %q", tt.kubeconfig)
			case tt.kubeconfig != "-" && c.Platform.Kubeconfig != tt.kubeconfig:
				t.Errorf("Platform.Kubeconfig = %q, want %q", c.Platform.Kubeconfig, tt.kubeconfig)
			}
		})
	}
}

// TestLoadPlatformKubeconfig checks that Load resolves a relative platform
// kubeconfig against the file's folder, as it does the targets'.
func TestLoadPlatformKubeconfig(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ kubeconfig, want string }{
		{"platform.kubeconfig", filepath.Join(dir, "platform.kubeconfig")},
		{"../elsewhere/platform.kubeconfig", filepath.Join(filepath.Dir(dir), "elsewhere", "platform.kubeconfig")},
		{"/etc/crproxy/platform.kubeconfig", "/etc/crproxy/platform.kubeconfig"},
	} {
		path := filepath.Join(dir, "crproxy.yaml")
		doc := base + crs(basicCR) + "platform:\n  kubeconfig: " + tt.kubeconfig + "\n"
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Platform == nil || c.Platform.Kubeconfig != tt.want {
			t.Errorf("kubeconfig %s: Platform = %+v, want kubeconfig %s", tt.kubeconfig, c.Platform, tt.want)
		}
	}
}
