package config_test

import (
	"errors"
	"fmt"

	"github.com/crproxy/crproxy/pkg/config"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`
client:
  name: team-a
targets:
  - name: orchestrator
    kubeconfig: /etc/crproxy/orchestrator.kubeconfig
controlPlane:            # vcluster.yaml keys crproxy does not read are fine
  distro: {k8s: {enabled: true}}
experimental:
  proxy:
    customResources:
      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster:
          name: orchestrator
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Client.Identity())
	for _, gv := range cfg.GroupVersions() {
		fmt.Println(gv.GroupVersion, gv.Resources, "->", gv.Target.Name, gv.Target.Project, gv.Access)
	}
	// Output:
	// loft:vcluster:p-default:team-a
	// example.com/v1 [myresources] -> orchestrator default owned
}

func ExampleValidationError() {
	_, err := config.Parse([]byte(`
client:
  name: client
target:
  - name: target
    kubeconfig: target.kubeconfig
experimental:
  proxy:
    customResources:
      myresources.example.com/v1:
        enabled: true
        targetVirtualCluster: {name: target}
`))
	var verr *config.ValidationError
	if errors.As(err, &verr) {
		for _, problem := range verr.Errors {
			fmt.Println(problem)
		}
	}
	// Output:
	// target: Invalid value: unknown top-level key: neither a crproxy key (client, targets, experimental) nor a vcluster.yaml key; did you mean "targets"?
	// experimental.proxy.customResources[myresources.example.com/v1].targetVirtualCluster.name: Not found: "target": no entry under targets has name "target" and project "default"; add one under targets, e.g. - {name: target, project: default, kubeconfig: <path>}
}
