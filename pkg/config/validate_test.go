package config

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

const crPath = "experimental.proxy.customResources"

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []problem
	}{
		{name: "basic is valid", doc: base + crs(basicCR)},
		{name: "document markers around one document", doc: "---\n" + base + crs(basicCR) + "---\n"},

		// client
		{
			name: "client.name required",
			doc:  "client: {project: default}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.name", field.ErrorTypeRequired, "set it to the client virtual cluster's name"}},
		},
		{
			name: "client section missing",
			doc:  "targets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.name", field.ErrorTypeRequired, ""}},
		},
		{
			name: "client.name uppercase",
			doc:  "client: {name: Team-A}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.name", field.ErrorTypeInvalid, "DNS-1123 label: use lowercase"}},
		},
		{
			name: "client.name with a dot is no label value",
			doc:  "client: {name: team.a}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.name", field.ErrorTypeInvalid, "DNS-1123 label"}},
		},
		{
			name: "client.name longer than 63",
			doc:  "client: {name: " + strings.Repeat("a", 64) + "}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.name", field.ErrorTypeInvalid, "at most 63 characters"}},
		},
		{
			name: "client.project invalid",
			doc:  "client: {name: client, project: My_Project}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.project", field.ErrorTypeInvalid, "DNS-1123 label"}},
		},
		{
			name: "client.project leaves no room for p-",
			doc:  "client: {name: client, project: " + strings.Repeat("a", 62) + "}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"client.project", field.ErrorTypeInvalid, "at most 61 characters"}},
		},
		{
			name: "client.kubeconfig may be empty",
			doc:  "client: {name: client, kubeconfig: \"\"}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(basicCR),
		},

		// targets
		{
			name: "target name required",
			doc:  "client: {name: client}\ntargets: [{name: target, kubeconfig: t}, {kubeconfig: x}]\n" + crs(basicCR),
			want: []problem{{"targets[1].name", field.ErrorTypeRequired, ""}},
		},
		{
			name: "target kubeconfig required",
			doc:  "client: {name: client}\ntargets: [{name: target}]\n" + crs(basicCR),
			want: []problem{{"targets[0].kubeconfig", field.ErrorTypeRequired, "path of a kubeconfig"}},
		},
		{
			name: "target name invalid",
			doc:  "client: {name: client}\ntargets: [{name: target, kubeconfig: t}, {name: Other, kubeconfig: t}]\n" + crs(basicCR),
			want: []problem{{"targets[1].name", field.ErrorTypeInvalid, "DNS-1123 label"}},
		},
		{
			name: "duplicate target, project defaulted on one side",
			doc:  "client: {name: client}\ntargets: [{name: target, kubeconfig: a}, {name: target, project: default, kubeconfig: b}]\n" + crs(basicCR),
			want: []problem{{"targets[1].name", field.ErrorTypeDuplicate, `targets[0] already defines target "target" in project "default"`}},
		},
		{
			name: "same target name in two projects is fine",
			doc:  "client: {name: client}\ntargets: [{name: target, kubeconfig: a}, {name: target, project: other, kubeconfig: b}]\n" + crs(basicCR),
		},

		// enabled entries
		{
			name: "enabled entry without target name",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true}`),
			want: []problem{{crPath + "[myresources.example.com/v1].targetVirtualCluster.name", field.ErrorTypeRequired, "required when enabled"}},
		},
		{
			name: "unknown target",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: missing}}`),
			want: []problem{{crPath + "[myresources.example.com/v1].targetVirtualCluster.name", field.ErrorTypeNotFound,
				`no entry under targets has name "missing" and project "default"; add one under targets, e.g. - {name: missing, project: default, kubeconfig: <path>}`}},
		},
		{
			name: "target known only in another project",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target, project: other-project}}`),
			want: []problem{{crPath + "[myresources.example.com/v1].targetVirtualCluster.name", field.ErrorTypeNotFound, `project "other-project"`}},
		},
		{
			name: "target project defaults to the client's",
			doc:  "client: {name: client, project: team}\ntargets: [{name: target, kubeconfig: t}]\n" + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target, project: team}}`),
		},
		{
			name: "target name invalid",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: Target}}`),
			want: []problem{{crPath + "[myresources.example.com/v1].targetVirtualCluster.name", field.ErrorTypeInvalid, "DNS-1123 label"}},
		},
		{
			name: "accessResources not supported",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}, accessResources: everything}`),
			want: []problem{{crPath + "[myresources.example.com/v1].accessResources", field.ErrorTypeNotSupported, `supported values: "owned", "all"`}},
		},
		{
			name: "accessResources is case-sensitive",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}, accessResources: Owned}`),
			want: []problem{{crPath + "[myresources.example.com/v1].accessResources", field.ErrorTypeNotSupported, ""}},
		},
		{
			name: "accessResources all",
			doc:  base + crs(`myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}, accessResources: all}`),
		},

		// malformed keys (details in TestParseResourceKey)
		{
			name: "malformed key",
			doc:  base + crs(basicCR, `myresources/v1: {enabled: true, targetVirtualCluster: {name: target}}`),
			want: []problem{{crPath + "[myresources/v1]", field.ErrorTypeInvalid, "e.g. myresources.example.com/v1"}},
		},

		// disabled entries
		{
			name: "disabled entry needs nothing",
			doc:  base + crs(basicCR, `otherresources.test.io/v2: {enabled: false}`, `thirdresources.test.io/v3: {targetVirtualCluster: {name: missing}}`),
		},
		{
			name: "disabled entry with a null value",
			doc:  base + crs(basicCR, `otherresources.test.io/v2:`),
		},
		{
			name: "disabled entry: key still validated",
			doc:  base + crs(basicCR, `OtherResources.test.io/v2: {enabled: false}`),
			want: []problem{{crPath + "[OtherResources.test.io/v2]", field.ErrorTypeInvalid, "lowercase"}},
		},
		{
			name: "disabled entry: values set must be valid",
			doc:  base + crs(basicCR, `otherresources.test.io/v2: {accessResources: some, targetVirtualCluster: {name: Bad}}`),
			want: []problem{
				{crPath + "[otherresources.test.io/v2].targetVirtualCluster.name", field.ErrorTypeInvalid, ""},
				{crPath + "[otherresources.test.io/v2].accessResources", field.ErrorTypeNotSupported, ""},
			},
		},

		// one group/version, one target, one mode
		{
			name: "wildcard and explicit key",
			doc:  base + crs(basicCR, `'*.example.com/v1': {enabled: true, targetVirtualCluster: {name: target}}`),
			want: []problem{{crPath + "[myresources.example.com/v1]", field.ErrorTypeInvalid,
				"conflicts with " + crPath + "[*.example.com/v1], which proxies every resource of example.com/v1"}},
		},
		{
			name: "enabled wildcard and disabled explicit key",
			doc:  base + crs(`myresources.example.com/v1: {enabled: false}`, `'*.example.com/v1': {enabled: true, targetVirtualCluster: {name: target}}`),
			want: []problem{{crPath + "[myresources.example.com/v1]", field.ErrorTypeInvalid, "[*.example.com/v1]"}},
		},
		{
			name: "disabled wildcard and explicit key",
			doc:  base + crs(basicCR, `'*.example.com/v1': {enabled: false}`),
		},
		{
			name: "wildcard and a key of another version",
			doc:  base + crs(basicCR, `'*.example.com/v2': {enabled: true, targetVirtualCluster: {name: target-b}}`),
		},
		{
			name: "one group/version, two targets",
			doc: base + crs(basicCR,
				`secondaryresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target-b}}`),
			want: []problem{{crPath + "[secondaryresources.example.com/v1].targetVirtualCluster", field.ErrorTypeInvalid,
				crPath + `[myresources.example.com/v1] routes example.com/v1 to "target" in project "default"`}},
		},
		{
			name: "one group/version, same name in two projects",
			doc: "client: {name: client}\ntargets: [{name: target, kubeconfig: a}, {name: target, project: other, kubeconfig: b}]\n" + crs(basicCR,
				`secondaryresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target, project: other}}`),
			want: []problem{{crPath + "[secondaryresources.example.com/v1].targetVirtualCluster", field.ErrorTypeInvalid, "same target virtual cluster"}},
		},
		{
			name: "one group/version, explicit and defaulted project agree",
			doc: base + crs(basicCR,
				`secondaryresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target, project: default}}`),
		},
		{
			name: "one group/version, two access modes",
			doc: base + crs(basicCR,
				`secondaryresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}, accessResources: all}`),
			want: []problem{{crPath + "[secondaryresources.example.com/v1].accessResources", field.ErrorTypeInvalid,
				crPath + `[myresources.example.com/v1] proxies example.com/v1 with accessResources "owned"`}},
		},
		{
			name: "one group/version, owned explicit and defaulted agree",
			doc: base + crs(basicCR,
				`secondaryresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}, accessResources: owned}`),
		},
		{
			name: "disabled key of a group/version may differ",
			doc: base + crs(basicCR,
				`secondaryresources.example.com/v1: {enabled: false, targetVirtualCluster: {name: target-b}, accessResources: all}`),
		},

		// at least one
		{
			name: "no custom resources",
			doc:  base,
			want: []problem{{crPath, field.ErrorTypeRequired, "add under experimental.proxy.customResources a key such as myresources.example.com/v1"}},
		},
		{
			name: "empty document",
			doc:  "",
			want: []problem{{"client.name", field.ErrorTypeRequired, ""}, {crPath, field.ErrorTypeRequired, ""}},
		},
		{
			name: "all entries disabled",
			doc:  base + crs(`myresources.example.com/v1: {targetVirtualCluster: {name: target}}`),
			want: []problem{{crPath, field.ErrorTypeRequired, "no entry has enabled: true"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, parseProblems(t, tt.doc), tt.want)
		})
	}
}

// TestValidateWithoutDefault checks that Validate applies the defaults itself.
func TestValidateWithoutDefault(t *testing.T) {
	c := &Config{
		Client:  Client{Name: "client"},
		Targets: []Target{{Name: "target", Kubeconfig: "t"}},
		Experimental: Experimental{Proxy: Proxy{CustomResources: map[string]CustomResourceProxy{
			"myresources.example.com/v1": {Enabled: true, TargetVirtualCluster: VirtualClusterRef{Name: "target"}},
		}}},
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("Validate: %v", errs)
	}
}

// TestValidateDeterministic checks that many problems, found while ranging
// over maps, always come in the same order.
func TestValidateDeterministic(t *testing.T) {
	doc := "client: {name: Bad}\ntargets: [{name: target}, {name: target}]\n" + crs(
		`a.example.com/v1: {enabled: true, targetVirtualCluster: {name: x}}`,
		`b.example.com/v1: {enabled: true, targetVirtualCluster: {name: target-c}, accessResources: all}`,
		`c.example.com/v1: {enabled: true}`,
		`'*.example.com/v2': {enabled: true, targetVirtualCluster: {name: target}}`,
		`d.example.com/v2: {enabled: true, targetVirtualCluster: {name: target}}`,
		`e.example.org/v1: {enabled: true, targetVirtualCluster: {name: target}, accessResources: some}`,
		`bad/v1: {enabled: true}`,
		`f.example.org/v1: {enabled: true, targetVirtualCluster: {name: target-b}}`,
	)
	first := parseProblems(t, doc)
	if len(first) < 10 {
		t.Fatalf("got only %d problems: %v", len(first), first)
	}
	for range 50 {
		if got := parseProblems(t, doc); !slices.EqualFunc(got, first, func(a, b *field.Error) bool { return a.Error() == b.Error() }) {
			t.Fatalf("order changed:\n%v\nthen\n%v", first, got)
		}
	}
}
