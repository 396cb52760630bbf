package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// dnsLabelFix says how to write a name that must be a DNS-1123 label.
const dnsLabelFix = "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters, e.g. team-a"

// Validate reports every problem of the configuration, each with the path of
// the offending key and how to fix it. Unset optional values are treated as
// their defaults, so Validate does not depend on Default having run. The
// problems come in a fixed order: client, targets, custom resources by
// key, then platform.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, c.validateClient(field.NewPath("client"))...)
	errs = append(errs, c.validateTargets(field.NewPath("targets"))...)
	errs = append(errs, c.validateCustomResources(field.NewPath("experimental", "proxy", "customResources"))...)
	errs = append(errs, c.validatePlatform(field.NewPath("platform"))...)
	return errs
}

// validatePlatform checks the platform section when there is one.
func (c *Config) validatePlatform(p *field.Path) field.ErrorList {
	if c.Platform == nil || c.Platform.Kubeconfig != "" {
		return nil
	}
	return field.ErrorList{field.Required(p.Child("kubeconfig"),
		"set it to the path of a kubeconfig for the platform's management cluster, where crproxy checks that "+
			"the client may use each target (verb use on virtualclusterinstances.management.loft.sh); "+
			"a relative path is relative to the configuration file; or remove it to check nothing")}
}

func (c *Config) validateClient(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Client.Name == "" {
		errs = append(errs, field.Required(p.Child("name"),
			"set it to the client virtual cluster's name; it makes the identity loft:vcluster:p-<project>:<name> and the "+LabelOwnerVCluster+" label"))
	} else {
		// A DNS-1123 label is also a valid label value, and the name is
		// both: the platform's vcluster name and an owner label value.
		errs = append(errs, validateName(p.Child("name"), c.Client.Name)...)
	}
	errs = append(errs, validateProject(p.Child("project"), c.Client.Project)...)
	return errs
}

func (c *Config) validateTargets(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	clientProject := c.Client.project()
	first := map[[2]string]int{} // (name, effective project) -> first index
	for i, t := range c.Targets {
		tp := p.Index(i)
		if t.Name == "" {
			errs = append(errs, field.Required(tp.Child("name"),
				"set it to the target virtual cluster's name, the one targetVirtualCluster.name refers to"))
		} else {
			errs = append(errs, validateName(tp.Child("name"), t.Name)...)
		}
		errs = append(errs, validateProject(tp.Child("project"), t.Project)...)
		if t.Kubeconfig == "" {
			errs = append(errs, field.Required(tp.Child("kubeconfig"),
				"set it to the path of a kubeconfig that reaches this target; a relative path is relative to the configuration file"))
		}
		if t.Name == "" {
			continue
		}
		id := [2]string{t.Name, t.project(clientProject)}
		if j, dup := first[id]; dup {
			e := field.Duplicate(tp.Child("name"), t.Name)
			e.Detail = fmt.Sprintf("%s already defines target %q in project %q; remove one of them", p.Index(j), id[0], id[1])
			errs = append(errs, e)
			continue
		}
		first[id] = i
	}
	return errs
}

// crEntry is one custom resource key with a well-formed key.
type crEntry struct {
	key  ResourceKey
	path *field.Path
	cr   CustomResourceProxy
}

func (c *Config) validateCustomResources(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	crs := c.Experimental.Proxy.CustomResources
	byGV := map[schema.GroupVersion][]crEntry{}
	enabled := 0
	for _, key := range sortedKeys(crs) {
		cr, kp := crs[key], p.Key(key)
		if rk, problem := parseKey(key); problem != "" {
			errs = append(errs, field.Invalid(kp, key, problem))
		} else {
			byGV[rk.GroupVersion()] = append(byGV[rk.GroupVersion()], crEntry{rk, kp, cr})
		}
		// Values that are set must be well-formed even when the entry is
		// disabled, so that a typo does not wait for the day it is enabled.
		ref, refPath := cr.TargetVirtualCluster, kp.Child("targetVirtualCluster")
		if ref.Name != "" {
			errs = append(errs, validateName(refPath.Child("name"), ref.Name)...)
		}
		errs = append(errs, validateProject(refPath.Child("project"), ref.Project)...)
		if a := cr.access(); a != AccessOwned && a != AccessAll {
			errs = append(errs, field.NotSupported(kp.Child("accessResources"), a, []AccessMode{AccessOwned, AccessAll}))
		}
		if !cr.Enabled {
			continue
		}
		enabled++
		switch {
		case ref.Name == "":
			errs = append(errs, field.Required(refPath.Child("name"),
				"required when enabled: set it to the name of the target virtual cluster, as listed under targets"))
		case len(validation.IsDNS1123Label(ref.Name)) > 0:
			// Already reported; looking it up would only repeat it.
		default:
			if _, ok := c.target(ref); !ok {
				project := ref.project(c.Client.project())
				e := field.NotFound(refPath.Child("name"), ref.Name)
				e.Detail = fmt.Sprintf("no entry under targets has name %q and project %q; add one under targets, e.g. - {name: %s, project: %s, kubeconfig: <path>}",
					ref.Name, project, ref.Name, project)
				errs = append(errs, e)
			}
		}
	}
	if enabled == 0 {
		detail := "enable at least one custom resource: add under experimental.proxy.customResources a key such as myresources.example.com/v1 with enabled: true and targetVirtualCluster.name"
		if len(crs) > 0 {
			detail = "no entry has enabled: true; " + detail
		}
		errs = append(errs, field.Required(p, detail))
	}
	for _, gv := range slices.SortedFunc(maps.Keys(byGV), compareGV) {
		errs = append(errs, c.validateGroupVersion(gv, byGV[gv])...)
	}
	return errs
}

// validateGroupVersion checks that the keys of one group/version agree. The
// client's aggregation layer routes whole group/versions (an APIService is per
// group/version), so every resource of one has one target and one mode, and a
// wildcard cannot be combined with single resources.
func (c *Config) validateGroupVersion(gv schema.GroupVersion, entries []crEntry) field.ErrorList {
	var errs field.ErrorList
	// A disabled single key next to an enabled wildcard looks like an
	// exclusion, which cannot be honoured either. A disabled wildcard routes
	// nothing, so single keys beside it are fine.
	if i := slices.IndexFunc(entries, func(e crEntry) bool { return e.key.Wildcard() }); i >= 0 && entries[i].cr.Enabled {
		w := entries[i]
		for _, e := range entries {
			if e.key == w.key {
				continue
			}
			errs = append(errs, field.Invalid(e.path, e.key.String(), fmt.Sprintf(
				"conflicts with %s, which proxies every resource of %s; a group/version is routed as a whole, so one resource cannot be listed, configured or left out on its own: remove one of the two keys",
				w.path, gv)))
		}
		if len(errs) > 0 {
			return errs
		}
	}
	clientProject := c.Client.project()
	var target, access *crEntry
	for _, e := range entries {
		if !e.cr.Enabled {
			continue
		}
		if ref := e.cr.TargetVirtualCluster; ref.Name != "" {
			ref.Project = ref.project(clientProject)
			if target == nil {
				target = &e
			} else if want := target.cr.TargetVirtualCluster; ref.Name != want.Name || ref.Project != want.project(clientProject) {
				errs = append(errs, field.Invalid(e.path.Child("targetVirtualCluster"), ref, fmt.Sprintf(
					"%s routes %s to %q in project %q; all resources of one group/version must use the same target virtual cluster, because the aggregation layer routes whole group/versions: use the same targetVirtualCluster for both keys",
					target.path, gv, want.Name, want.project(clientProject))))
			}
		}
		if a := e.cr.access(); a == AccessOwned || a == AccessAll {
			if access == nil {
				access = &e
			} else if want := access.cr.access(); a != want {
				errs = append(errs, field.Invalid(e.path.Child("accessResources"), a, fmt.Sprintf(
					"%s proxies %s with accessResources %q; all resources of one group/version must use the same access mode, because the aggregation layer routes whole group/versions: use the same accessResources for both keys",
					access.path, gv, want)))
			}
		}
	}
	return errs
}

// validateName checks a virtual cluster name: a DNS-1123 label, as vCluster
// Platform requires and as an owner label value needs.
func validateName(p *field.Path, name string) field.ErrorList {
	if len(validation.IsDNS1123Label(name)) == 0 {
		return nil
	}
	return field.ErrorList{field.Invalid(p, name, "must be a DNS-1123 label: "+dnsLabelFix)}
}

// validateProject checks a project name. Empty is valid (it defaults). The
// platform keeps a project in the namespace p-<project>, so the project must
// leave room for the prefix.
func validateProject(p *field.Path, project string) field.ErrorList {
	switch {
	case project == "":
		return nil
	case len(validation.IsDNS1123Label(project)) > 0:
		return field.ErrorList{field.Invalid(p, project, "must be a DNS-1123 label: "+dnsLabelFix)}
	case len(validation.IsDNS1123Label("p-"+project)) > 0:
		return field.ErrorList{field.Invalid(p, project, "must be at most 61 characters, so that the platform namespace p-<project> fits in 63")}
	}
	return nil
}

// compareGV orders group/versions by group, then version.
func compareGV(a, b schema.GroupVersion) int {
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return strings.Compare(a.Version, b.Version)
}
