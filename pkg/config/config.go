package config

// LabelOwnerVCluster and LabelOwnerProject are the owner labels crproxy writes
// on every object it creates or updates in a target. They record which client
// made the object, so that AccessOwned can show each client only its own.
const (
	// LabelOwnerVCluster holds the client's name (Client.Name).
	LabelOwnerVCluster = "vcluster.com/owner-vcluster"
	// LabelOwnerProject holds the client's project (Client.Project).
	LabelOwnerProject = "vcluster.com/owner-project"
)

// defaultProject is the platform project of a client that names none, as in
// vCluster Platform, where every virtual cluster lives in some project.
const defaultProject = "default"

// AccessMode is a custom resource's accessResources: which objects of the
// target a client sees.
type AccessMode string

const (
	// AccessOwned shows a client only the objects that carry its owner
	// labels. It is the default, so that clients sharing a target are
	// isolated from one another unless they ask otherwise.
	AccessOwned AccessMode = "owned"
	// AccessAll shows a client every object of the resource. Writes still
	// stamp the writer's owner labels.
	AccessAll AccessMode = "all"
)

// Config is crproxy's configuration: the sections of a vcluster.yaml that
// crproxy reads plus its own client and targets sections. Keys of the
// vcluster.yaml that crproxy does not read are accepted and dropped, so a
// Config is a read-only view, not a round-trippable vcluster.yaml.
type Config struct {
	// Client is who this proxy acts for.
	Client Client `json:"client"`
	// Targets tells crproxy how to reach each target virtual cluster; it
	// stands in for what vCluster Platform would resolve.
	Targets []Target `json:"targets"`
	// Experimental is the vcluster.yaml section that holds the proxy.
	Experimental Experimental `json:"experimental"`
	// Platform, when set, is the platform's management cluster, which
	// crproxy asks whether the client may use each target (see Platform).
	// nil when the configuration has no platform.kubeconfig: nothing is
	// checked.
	Platform *Platform `json:"platform,omitempty"`
}

// Platform is crproxy's part of the platform section: how to reach the
// vCluster Platform's management cluster. There, the Resource Proxy
// documentation requires the client identity
// loft:vcluster:p-<project>:<name> to hold the verb use on the
// virtualclusterinstances (group management.loft.sh) named after each target,
// in the namespace p-<target project>; crproxy checks that by
// SubjectAccessReview (package platform) before it mirrors or writes a
// target. The other keys of a vcluster.yaml's platform section are
// vCluster's and are ignored.
type Platform struct {
	// Kubeconfig is the path of a kubeconfig for the management cluster;
	// its identity needs create on subjectaccessreviews there. A relative
	// path is relative to the configuration file. Required.
	Kubeconfig string `json:"kubeconfig"`
}

// Client identifies the client virtual cluster this proxy acts for.
type Client struct {
	// Project is the client's platform project; empty means "default".
	Project string `json:"project,omitempty"`
	// Name is the client's name. Required.
	Name string `json:"name"`
	// Kubeconfig is the path of a kubeconfig for the client cluster; empty
	// means the in-cluster configuration.
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// Target is a target virtual cluster crproxy can route to, and how to reach it.
type Target struct {
	// Name is the target's name, as referenced by targetVirtualCluster.name.
	// Required.
	Name string `json:"name"`
	// Project is the target's platform project; empty means the client's.
	Project string `json:"project,omitempty"`
	// Kubeconfig is the path of a kubeconfig that reaches the target.
	// Required.
	Kubeconfig string `json:"kubeconfig"`
}

// Experimental is the vcluster.yaml experimental section, reduced to the part
// crproxy reads.
type Experimental struct {
	// Proxy is experimental.proxy.
	Proxy Proxy `json:"proxy"`
}

// Proxy is experimental.proxy of a vcluster.yaml.
type Proxy struct {
	// CustomResources maps a resource key ("resource.group/version" or
	// "*.group/version", see ParseResourceKey) to its proxy settings.
	CustomResources map[string]CustomResourceProxy `json:"customResources"`
}

// CustomResourceProxy is the proxy configuration of one resource key.
type CustomResourceProxy struct {
	// Enabled turns proxying of the key on. Entries default to disabled.
	Enabled bool `json:"enabled"`
	// TargetVirtualCluster is where the resource is stored. Its name is
	// required when Enabled.
	TargetVirtualCluster VirtualClusterRef `json:"targetVirtualCluster"`
	// AccessResources is the visibility mode; empty means AccessOwned.
	AccessResources AccessMode `json:"accessResources,omitempty"`
}

// VirtualClusterRef names a virtual cluster on the platform.
type VirtualClusterRef struct {
	// Name is the virtual cluster's name.
	Name string `json:"name"`
	// Project is the virtual cluster's project; empty means the client's.
	Project string `json:"project,omitempty"`
}

// Identity is the client's platform identity: "loft:vcluster:p-<project>:<name>".
// crproxy impersonates it at the target, so the target's RBAC for that user
// decides what the client may do.
func Identity(project, name string) string {
	return "loft:vcluster:p-" + project + ":" + name
}

// Identity is the client's platform identity, with the project defaulted.
func (c Client) Identity() string {
	return Identity(c.project(), c.Name)
}

// OwnerLabels returns {LabelOwnerVCluster: name, LabelOwnerProject: project},
// with the project defaulted. The map is new on every call; callers may keep
// or change it.
func (c Client) OwnerLabels() map[string]string {
	return map[string]string{
		LabelOwnerVCluster: c.Name,
		LabelOwnerProject:  c.project(),
	}
}

// project is the client's effective project.
func (c Client) project() string {
	if c.Project == "" {
		return defaultProject
	}
	return c.Project
}

// project is the target's effective project: the client's when unset.
func (t Target) project(clientProject string) string {
	if t.Project == "" {
		return clientProject
	}
	return t.Project
}

// project is the referenced virtual cluster's effective project.
func (r VirtualClusterRef) project(clientProject string) string {
	if r.Project == "" {
		return clientProject
	}
	return r.Project
}

// access is the effective access mode.
func (cr CustomResourceProxy) access() AccessMode {
	if cr.AccessResources == "" {
		return AccessOwned
	}
	return cr.AccessResources
}

// Default fills in the defaults the documentation promises: the client's
// project, each target's and each targetVirtualCluster's project (the
// client's), and accessResources (owned). Validate and GroupVersions apply
// the same defaults themselves, so calling Default is only needed to see them
// in the struct.
func (c *Config) Default() {
	if c.Client.Project == "" {
		c.Client.Project = defaultProject
	}
	for i := range c.Targets {
		c.Targets[i].Project = c.Targets[i].project(c.Client.Project)
	}
	for key, cr := range c.Experimental.Proxy.CustomResources {
		cr.TargetVirtualCluster.Project = cr.TargetVirtualCluster.project(c.Client.Project)
		cr.AccessResources = cr.access()
		c.Experimental.Proxy.CustomResources[key] = cr
	}
}

// target returns the entry of Targets that ref points to, with its project
// filled in, or false when there is none.
func (c *Config) target(ref VirtualClusterRef) (Target, bool) {
	clientProject := c.Client.project()
	project := ref.project(clientProject)
	for _, t := range c.Targets {
		if t.Name == ref.Name && t.project(clientProject) == project {
			t.Project = project
			return t, true
		}
	}
	return Target{}, false
}
