package config

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestParseResourceKey(t *testing.T) {
	tests := []struct {
		key     string
		want    ResourceKey
		wantErr string // a piece of the error; empty: valid
	}{
		// The documentation's keys.
		{key: "myresources.example.com/v1", want: ResourceKey{"myresources", "example.com", "v1"}},
		{key: "otherresources.test.io/v2", want: ResourceKey{"otherresources", "test.io", "v2"}},
		{key: "additionalresources.acme.org/v1alpha1", want: ResourceKey{"additionalresources", "acme.org", "v1alpha1"}},
		{key: "*.example.com/v1", want: ResourceKey{"*", "example.com", "v1"}},
		{key: "my-resources.sub.example.co.uk/v2beta3", want: ResourceKey{"my-resources", "sub.example.co.uk", "v2beta3"}},

		{key: "", wantErr: "missing /<version>"},
		{key: "myresources.example.com", wantErr: "missing /<version>"},
		{key: "myresources.example.com/", wantErr: "the version is empty"},
		{key: "myresources/v1", wantErr: "missing group"},
		{key: "myresources./v1", wantErr: "the group is empty"},
		{key: "deployments.apps/v1", wantErr: `group "apps" has no dot`},
		{key: ".example.com/v1", wantErr: "the resource is empty"},
		{key: "MyResources.example.com/v1", wantErr: `resource "MyResources" must be a lowercase plural name`},
		{key: "myresources.Example.com/v1", wantErr: `group "Example.com" must be a lowercase DNS subdomain`},
		{key: "myresources.example.com/V1", wantErr: `version "V1" must be lowercase`},
		{key: "my_resources.example.com/v1", wantErr: "resource"},
		{key: "1resources.example.com/v1", wantErr: "starting with a letter"},
		{key: "my*.example.com/v1", wantErr: `resource "my*"`},
		{key: "myresources.-example.com/v1", wantErr: "DNS subdomain"},
		{key: "myresources.example..com/v1", wantErr: "DNS subdomain"},
		{key: "myresources.exa_mple.com/v1", wantErr: "DNS subdomain"},
		{key: "myresources.example.com/1", wantErr: `version "1"`},
		{key: "myresources.example.com/v1/status", wantErr: "more than one '/'"},
		{key: "example.com/myresources/v1", wantErr: "more than one '/'"},
		{key: "/v1", wantErr: "missing group"},
		{key: " myresources.example.com/v1", wantErr: "resource"},
		{key: "MYRESOURCES.EXAMPLE/V1", wantErr: "resource"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := ParseResourceKey(tt.key)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseResourceKey(%q) = %+v, %v; want %+v", tt.key, got, err, tt.want)
				}
				if got.String() != tt.key {
					t.Errorf("String() = %q, want %q", got.String(), tt.key)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseResourceKey(%q) = %+v, want an error", tt.key, got)
			}
			// Every message names the key and shows the format by example.
			for _, want := range []string{tt.wantErr, `"` + tt.key + `"`, "<plural resource>.<group>/<version>", "e.g. myresources.example.com/v1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestResourceKeyAccessors(t *testing.T) {
	k := ResourceKey{"myresources", "example.com", "v1"}
	if k.Wildcard() {
		t.Error("myresources is no wildcard")
	}
	if got, want := k.GroupVersion(), (schema.GroupVersion{Group: "example.com", Version: "v1"}); got != want {
		t.Errorf("GroupVersion() = %v, want %v", got, want)
	}
	w := ResourceKey{"*", "example.com", "v1"}
	if !w.Wildcard() || w.String() != "*.example.com/v1" {
		t.Errorf("wildcard %+v: Wildcard() = %v, String() = %q", w, w.Wildcard(), w.String())
	}
}
