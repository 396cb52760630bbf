/*
Package config loads, defaults and validates crproxy's configuration.

The configuration is a vcluster.yaml, accepted as it is, plus sections of
crproxy's own. crproxy reads experimental.proxy.customResources (the Resource
Proxy settings of vCluster), client (who this proxy acts for), targets (how
to reach each target virtual cluster, which vCluster Platform would otherwise
resolve) and, optionally, platform.kubeconfig (the platform's management
cluster, where crproxy checks that the client may use each target):

	client:
	  project: default            # identity loft:vcluster:p-default:client
	  name: client
	  kubeconfig: client.kubeconfig   # empty: in-cluster config
	targets:
	  - name: target
	    kubeconfig: target.kubeconfig # project empty: the client's
	experimental:
	  proxy:
	    customResources:
	      myresources.example.com/v1:
	        enabled: true
	        targetVirtualCluster: {name: target}
	        accessResources: owned    # owned (default) | all
	platform:                     # optional: no section, no check
	  kubeconfig: platform.kubeconfig

With platform.kubeconfig set, crproxy serves and writes a target's resources
only while the management cluster says, by SubjectAccessReview, that the
client identity may use the target: the verb use on the
virtualclusterinstances.management.loft.sh named after the target, in the
namespace p-<target project>, as the Resource Proxy documentation's
platform-rbac.yaml grants (package platform does the checking).

# Contract

Decoding is strict where crproxy reads: an unknown field in client, a target,
experimental.proxy, a custom resource entry or its targetVirtualCluster is an
error naming its full path and the closest known field. The other top-level
keys of a vcluster.yaml (controlPlane, sync, networking, ...; also the Helm
values of vCluster before v0.20) and the other keys under experimental are
vCluster's and are ignored. A top-level key that is neither crproxy's nor
vCluster's is an error, with a "did you mean" hint when a known key is close.
Duplicate keys are errors. The platform section is both vCluster's and
crproxy's: crproxy reads its kubeconfig, ignores vCluster's keys there (project,
apiKey, ...) and reports a key that looks like a mistyped kubeconfig; a platform
section without kubeconfig turns on no check.

Parse and Load report every problem at once in a *ValidationError, each with
the path of the key (for example
experimental.proxy.customResources[myresources.example.com/v1].targetVirtualCluster.name)
and how to fix it, in a deterministic order. A returned *Config has passed
Validate and has its defaults filled in: the client's project ("default"), the
project of targets and targetVirtualCluster (the client's), accessResources
(owned). Load makes the kubeconfig paths (client, targets, platform) relative
to the file's folder absolute.

One group/version is routed as a whole by the client's aggregation layer, so
all keys of one group/version must agree on target and access mode, and a
wildcard key (*.group/version) cannot be combined with single resources of
its group/version. GroupVersions returns this resolved per-group/version view.

# Use

	cfg, err := config.Load("crproxy.yaml")
	if err != nil {
		var verr *config.ValidationError
		if errors.As(err, &verr) {
			for _, problem := range verr.Errors {
				fmt.Println(problem) // one problem per line
			}
		}
		return err
	}
	impersonate := cfg.Client.Identity() // loft:vcluster:p-default:client
	labels := cfg.Client.OwnerLabels()
	for _, gv := range cfg.GroupVersions() {
		// gv.GroupVersion is served by the client and routed to gv.Target,
		// reached with gv.Target.Kubeconfig, with visibility gv.Access.
	}
*/
package config
