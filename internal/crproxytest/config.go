package crproxytest

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/pkg/config"
)

// MyResourcesKey is the documentation's resource key.
const MyResourcesKey = "myresources.example.com/v1"

// TargetName is the name Config gives its single target.
const TargetName = "target"

// Config is the documentation's basic setup for the client name of project
// "default" on client: myresources.example.com/v1 proxied, in owned mode,
// from target, named TargetName. Callers change the struct for other
// setups (access mode, more targets, other keys).
func Config(name string, client, target *localcluster.APIServer) config.Config {
	return config.Config{
		Client:  config.Client{Project: "default", Name: name, Kubeconfig: client.KubeconfigPath},
		Targets: []config.Target{{Name: TargetName, Kubeconfig: target.KubeconfigPath}},
		Experimental: config.Experimental{Proxy: config.Proxy{CustomResources: map[string]config.CustomResourceProxy{
			MyResourcesKey: {
				Enabled:              true,
				TargetVirtualCluster: config.VirtualClusterRef{Name: TargetName},
				AccessResources:      config.AccessOwned,
			},
		}}},
	}
}

// WriteConfig writes c at path as the YAML crproxy serve reads, and checks
// that crproxy would accept it, so a test's mistake fails here and not as a
// crproxy that does not start.
func WriteConfig(path string, c config.Config) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("the configuration written to %s: %w", path, err)
	}
	return nil
}
