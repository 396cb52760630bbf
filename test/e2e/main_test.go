package e2e

import (
	"testing"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// One etcd serves every test of the package; see clustertest.
func TestMain(m *testing.M) { clustertest.Main(m) }
