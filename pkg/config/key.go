package config

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// wildcardResource is the resource of a key that proxies a whole group/version.
const wildcardResource = "*"

// keyFormat is appended to every malformed-key message so that the fix is on
// the same line as the problem.
const keyFormat = "a key is <plural resource>.<group>/<version> or *.<group>/<version>, e.g. myresources.example.com/v1 or *.example.com/v1"

// ResourceKey is a parsed key of experimental.proxy.customResources.
type ResourceKey struct {
	// Resource is the plural resource name, or "*" for every resource of
	// the group/version.
	Resource string
	// Group is the API group; it always contains a dot, as CRD groups do.
	Group string
	// Version is the API version, e.g. v1 or v1alpha1.
	Version string
}

// ParseResourceKey parses a key such as "myresources.example.com/v1" or
// "*.example.com/v1". The resource is everything before the first dot, the
// group everything after it up to the slash.
func ParseResourceKey(key string) (ResourceKey, error) {
	k, problem := parseKey(key)
	if problem != "" {
		return ResourceKey{}, fmt.Errorf("invalid resource key %q: %s", key, problem)
	}
	return k, nil
}

// parseKey parses key and, when it is malformed, says why and how to write it.
func parseKey(key string) (ResourceKey, string) {
	rg, version, ok := strings.Cut(key, "/")
	switch {
	case !ok:
		return ResourceKey{}, "missing /<version>; " + keyFormat
	case strings.Contains(version, "/"):
		return ResourceKey{}, "more than one '/'; " + keyFormat
	}
	resource, group, ok := strings.Cut(rg, ".")
	if !ok {
		return ResourceKey{}, "missing group: no '.' between resource and group; " + keyFormat
	}
	var problems []string
	switch {
	case resource == "":
		problems = append(problems, "the resource is empty")
	case resource == wildcardResource:
	case len(validation.IsDNS1035Label(resource)) > 0:
		problems = append(problems, fmt.Sprintf("resource %q must be a lowercase plural name (a-z, 0-9 and '-', starting with a letter)", resource))
	}
	switch {
	case group == "":
		problems = append(problems, "the group is empty")
	case !strings.Contains(group, "."):
		// Built-in groups like apps have no dot; CRD groups always have one.
		problems = append(problems, fmt.Sprintf("group %q has no dot; CRD groups are DNS subdomains such as example.com", group))
	case len(validation.IsDNS1123Subdomain(group)) > 0:
		problems = append(problems, fmt.Sprintf("group %q must be a lowercase DNS subdomain such as example.com", group))
	}
	switch {
	case version == "":
		problems = append(problems, "the version is empty")
	case len(validation.IsDNS1035Label(version)) > 0:
		problems = append(problems, fmt.Sprintf("version %q must be lowercase letters and digits starting with a letter, such as v1 or v1alpha1", version))
	}
	if len(problems) > 0 {
		return ResourceKey{}, strings.Join(problems, "; ") + "; " + keyFormat
	}
	return ResourceKey{Resource: resource, Group: group, Version: version}, ""
}

// Wildcard reports whether the key proxies every resource of its group/version.
func (k ResourceKey) Wildcard() bool {
	return k.Resource == wildcardResource
}

// GroupVersion is the key's group/version, the unit the aggregation layer routes.
func (k ResourceKey) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: k.Group, Version: k.Version}
}

// String returns the key as written in the configuration.
func (k ResourceKey) String() string {
	return k.Resource + "." + k.Group + "/" + k.Version
}
