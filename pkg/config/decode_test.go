package config

import (
	"errors"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestParseStrict covers strict decoding: unknown fields in crproxy's
// sections, unknown top-level keys, and values of the wrong type.
func TestParseStrict(t *testing.T) {
	entry := crPath + "[myresources.example.com/v1]"
	tests := []struct {
		name string
		doc  string
		want []problem
	}{
		{
			name: "unknown field in client",
			doc:  "client: {name: client, nmae: x}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.nmae", field.ErrorTypeInvalid, `unknown field; did you mean "name"? (known fields: project, name, kubeconfig)`}},
		},
		{
			name: "vcluster spelling kubeConfig in a target",
			doc:  "client: {name: client}\ntargets: [{name: target, kubeconfig: t}, {name: target-b, kubeConfig: b}]\n" + crs(basicCR),
			want: []problem{
				{"targets[1].kubeConfig", field.ErrorTypeInvalid, `did you mean "kubeconfig"?`},
				{"targets[1].kubeconfig", field.ErrorTypeRequired, ""},
			},
		},
		{
			name: "unknown field in experimental.proxy",
			doc:  base + crs(basicCR) + "    customResource: {}\n    mode: all\n",
			want: []problem{
				{"experimental.proxy.customResource", field.ErrorTypeInvalid, `did you mean "customResources"?`},
				{"experimental.proxy.mode", field.ErrorTypeInvalid, "remove it or check its indentation (known fields: customResources)"},
			},
		},
		{
			name: "unknown fields in a custom resource entry",
			doc:  base + crs(`myresources.example.com/v1: {enable: true, enabled: true, targetVirtualCluster: {name: target}, accessResource: all}`),
			want: []problem{
				{entry + ".accessResource", field.ErrorTypeInvalid, `did you mean "accessResources"?`},
				{entry + ".enable", field.ErrorTypeInvalid, `did you mean "enabled"?`},
			},
		},
		{
			name: "unknown field in targetVirtualCluster",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target, namespace: default}}`),
			want: []problem{{entry + ".targetVirtualCluster.namespace", field.ErrorTypeInvalid, "(known fields: name, project)"}},
		},
		{
			name: "field names are case-sensitive",
			doc:  base + crs(`myresources.example.com/v1: {Enabled: true, targetVirtualCluster: {name: target}}`),
			want: []problem{
				{entry + ".Enabled", field.ErrorTypeInvalid, `did you mean "enabled"?`},
				{crPath, field.ErrorTypeRequired, "no entry has enabled: true"},
			},
		},
		{
			name: "typo of targets",
			doc:  base + crs(basicCR) + "target: [{name: x, kubeconfig: x}]\n",
			want: []problem{{"target", field.ErrorTypeInvalid, `unknown top-level key: neither a crproxy key (client, targets, experimental) nor a vcluster.yaml key; did you mean "targets"?`}},
		},
		{
			name: "typos of client and experimental",
			doc:  "clinet: {name: client}\nexperimantal: {}\n" + crs(basicCR) + "targets: [{name: target, kubeconfig: t}]\n",
			want: []problem{
				{"clinet", field.ErrorTypeInvalid, `did you mean "client"?`},
				{"experimantal", field.ErrorTypeInvalid, `did you mean "experimental"?`},
				{"client.name", field.ErrorTypeRequired, ""},
			},
		},
		{
			name: "top-level key in the wrong case",
			doc:  base + crs(basicCR) + "ControlPlane: {}\n",
			want: []problem{{"ControlPlane", field.ErrorTypeInvalid, `did you mean "controlPlane"?`}},
		},
		{
			name: "unknown top-level key without a close name",
			doc:  base + crs(basicCR) + "whatever: 1\n",
			want: []problem{{"whatever", field.ErrorTypeInvalid, "remove it or check its indentation"}},
		},
		{
			name: "proxy at the top level",
			doc:  base + "proxy:\n  customResources:\n    " + basicCR + "\n",
			want: []problem{
				{"proxy", field.ErrorTypeInvalid, "move it to experimental.proxy"},
				{crPath, field.ErrorTypeRequired, ""},
			},
		},
		{
			name: "customResources directly under experimental",
			doc:  base + "experimental:\n  customResources:\n    " + basicCR + "\n",
			want: []problem{
				{"experimental.customResources", field.ErrorTypeInvalid, "move it to experimental.proxy.customResources"},
				{crPath, field.ErrorTypeRequired, ""},
			},
		},
		{
			name: "typo of proxy under experimental",
			doc:  base + "experimental:\n  proxies:\n    customResources:\n      " + basicCR + "\n",
			want: []problem{
				{"experimental.proxies", field.ErrorTypeInvalid, `did you mean "proxy"?`},
				{crPath, field.ErrorTypeRequired, ""},
			},
		},
		{
			name: "vcluster.yaml keys are ignored",
			doc: base + crs(basicCR) + `controlPlane: {distro: {k8s: {enabled: true}}}
sync: {toHost: {pods: {enabled: true}}}
networking: {advanced: {clusterDomain: cluster.local}}
policies: {}
rbac: {}
exportKubeConfig: {context: x}
integrations: {}
deploy: {}
plugins: {}
platform: {}
telemetry: {enabled: false}
pro: true
sleepMode: {}
logging: {}
privateNodes: {}
external: {}
serviceCIDR: 10.96.0.0/12
global: {}
`,
		},
		{
			name: "Helm values of vCluster before v0.20 are ignored",
			doc:  base + crs(basicCR) + "multiNamespaceMode: {enabled: true}\nsyncer: {extraArgs: [--foo]}\nvcluster: {image: x}\nisolation: {enabled: true}\n",
		},
		{
			name: "other experimental keys are ignored",
			doc: base + crs(basicCR) + `  syncSettings: {setOwner: true}
  genericSync: {role: {extraRules: []}}
  multiNamespaceMode: {enabled: false}
  isolatedControlPlane: {headless: false}
  denyProxyRequests: []
  virtualClusterKubeConfig: {kubeConfig: x}
  deploy: {vcluster: {manifests: ""}}
  somethingNew: {enabled: true}
`,
		},
		{
			name: "boolean as a string",
			doc:  base + crs(`myresources.example.com/v1: {enabled: "true", targetVirtualCluster: {name: target}}`),
			want: []problem{{entry + ".enabled", field.ErrorTypeInvalid, "must be a boolean (true or false), not a string"}},
		},
		{
			name: "YAML boolean where a name belongs",
			doc:  "client: {name: on}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.name", field.ErrorTypeInvalid, "must be a string, not a boolean; put the value in quotes"}},
		},
		{
			name: "targetVirtualCluster as a string",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: target}`),
			want: []problem{{entry + ".targetVirtualCluster", field.ErrorTypeInvalid, "must be a mapping, not a string"}},
		},
		{
			name: "sections of the wrong type",
			doc:  "client: client\ntargets: {name: target}\nexperimental: []\n",
			want: []problem{
				{"client", field.ErrorTypeInvalid, "must be a mapping, not a string"},
				{"experimental", field.ErrorTypeInvalid, "must be a mapping, not a list"},
				{"targets", field.ErrorTypeInvalid, "must be a list, not a mapping"},
			},
		},
		{
			name: "customResources as a list",
			doc:  base + "experimental: {proxy: {customResources: [" + basicCR + "]}}\n",
			want: []problem{{crPath, field.ErrorTypeInvalid, "must be a mapping, not a list"}},
		},
		{
			name: "a target that is no mapping",
			doc:  "client: {name: client}\ntargets: [{name: target, kubeconfig: t}, target-b]\n" + crs(basicCR),
			want: []problem{{"targets[1]", field.ErrorTypeInvalid, "must be a mapping, not a string"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, parseProblems(t, tt.doc), tt.want)
		})
	}
}

// TestParseNotYAML covers documents that cannot be read at all: they give a
// plain error with the parser's line number, not a *ValidationError.
func TestParseNotYAML(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"duplicate top-level key", base + crs(basicCR) + "client: {name: other}\n", `key "client" already set in map`},
		{"duplicate nested key", "client: {name: a, name: b}\n", `line 1: key "name" already set in map`},
		{"duplicate resource key", base + crs(basicCR, basicCR), `key "myresources.example.com/v1" already set in map`},
		{"syntax error", "client: [\n", "invalid YAML"},
		{"not a mapping", "- client\n", "must be a YAML mapping"},
		{"two documents", base + crs(basicCR) + "---\n" + base + crs(basicCR), "holds 2 YAML documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if err == nil || c != nil {
				t.Fatalf("Parse = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			var verr *ValidationError
			if errors.As(err, &verr) {
				t.Errorf("error is a *ValidationError: %v", err)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"target", "targets", 1}, {"nmae", "name", 1}, {"kitten", "sitting", 3}, {"", "abc", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestValidationErrorMessage checks the message: one problem per line, under
// a line naming the file.
func TestValidationErrorMessage(t *testing.T) {
	path := t.TempDir() + "/crproxy.yaml"
	if err := os.WriteFile(path, []byte("targets: [{name: target}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `: invalid configuration, 3 problem(s):
  client.name: Required value: set it to the client virtual cluster's name; it makes the identity loft:vcluster:p-<project>:<name> and the vcluster.com/owner-vcluster label
  targets[0].kubeconfig: Required value: set it to the path of a kubeconfig that reaches this target; a relative path is relative to the configuration file
  experimental.proxy.customResources: Required value: enable at least one custom resource: add under experimental.proxy.customResources a key such as myresources.example.com/v1 with enabled: true and targetVirtualCluster.name`
	if err == nil || err.Error() != want {
		t.Fatalf("Load error:\n%v\nwant:\n%s", err, want)
	}
	var verr *ValidationError
	if !errors.As(err, &verr) || verr.File != path || len(verr.Errors) != 3 {
		t.Fatalf("errors.As: %+v", verr)
	}
	var fe *field.Error
	if !errors.As(err, &fe) || fe.Field != "client.name" {
		t.Errorf("errors.As(*field.Error) = %v, want the first problem", fe)
	}
}
