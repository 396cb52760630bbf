package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// kubectlCasesRBAC lets the client identity use the groups of kubectl's
// custom-resource cases at the target.
var kubectlCasesRBAC = crproxytest.ClientRBAC("kubectl-cases-client",
	rbacv1.PolicyRule{APIGroups: []string{"company.com", "mygroup.example.com", "test.com", "bar.com", "kubectl.example.com", "example.com"}, Resources: []string{"*"}, Verbs: []string{"*"}},
	crproxytest.NamespacesRule)

// kubectlCasesDriver runs one function of the kubernetes tree's test/cmd
// (crd.sh, discovery.sh, get.sh, events.sh, and sections of apply.sh) with
// its own helpers (hack/lib/test.sh), as hack/make-rules/test-cmd.sh does,
// with one adaptation: kubectl is a function that sends what concerns CRDs
// (a customresourcedefinitions argument, or a manifest on stdin or in a -f
// file that holds a CRD) to the cluster that stores them
// ($CRD_KUBECONFIG), and everything else to the cluster users work with
// ($USER_KUBECONFIG); a -f file holding CRDs and other objects is split
// between the two. After a CRD was created, changed or deleted there, it
// waits (up to about 30 s) until the users' cluster describes the group's
// versions, resources and scopes as the storing cluster does, as its own
// discovery would at once if it stored the CRD. Natively both are the same
// cluster.
const kubectlCasesDriver = `set -o errexit -o nounset -o pipefail
cd "$KUBE_ROOT"
source hack/lib/logging.sh
source hack/lib/test.sh
source test/cmd/apply.sh
source test/cmd/crd.sh
source test/cmd/discovery.sh
source test/cmd/events.sh
source test/cmd/get.sh
# As test/cmd/legacy-script.sh sets it (the cronjob's pod never runs).
IMAGE_PERL="registry.k8s.io/perl"
KUBE_TEMP=$(mktemp -d)
export KUBE_TEMP
kube_flags=(--request-timeout=60s)
kube_flags_with_token=(--request-timeout=60s)
export id_field=".metadata.name"
export labels_field=".metadata.labels"
export annotations_field=".metadata.annotations"
CONTEXT=$("$KUBECTL" --kubeconfig="$USER_KUBECONFIG" config current-context)

kubectl() {
  local kubeconfig=$USER_KUBECONFIG cache=$CACHE_DIR/user arg prev="" stdin=0 input="" mixed=""
  for arg in "$@"; do
    case "$arg" in
      customresourcedefinition|customresourcedefinitions|customresourcedefinition/*|customresourcedefinitions/*|crd|crds|crd/*|crds/*)
        kubeconfig=$CRD_KUBECONFIG cache=$CACHE_DIR/crd ;;
      -) stdin=1 ;;
    esac
    if [[ ($prev == -f || $prev == --filename) && $arg != - && -f $arg ]] && grep -Eq 'kind: *CustomResourceDefinition' "$arg"; then
      if [[ $CRD_KUBECONFIG != "$USER_KUBECONFIG" ]] && split_crds "$arg"; then
        mixed=$arg
      else
        kubeconfig=$CRD_KUBECONFIG cache=$CACHE_DIR/crd
      fi
    fi
    prev=$arg
  done
  if [[ -n $mixed ]]; then
    kubectl_split "$mixed" "$@"
    return
  fi
  if [[ $stdin == 1 ]]; then
    input=$(cat)
    if grep -Eq '"kind": *"CustomResourceDefinition"|kind: *CustomResourceDefinition' <<<"$input"; then
      kubeconfig=$CRD_KUBECONFIG cache=$CACHE_DIR/crd
    fi
  fi
  if [[ $kubeconfig == "$USER_KUBECONFIG" ]]; then
    # As it is: a watch streams, stderr stays apart.
    if [[ $stdin == 1 ]]; then
      "$KUBECTL" --kubeconfig="$kubeconfig" --cache-dir="$cache" "$@" <<<"$input"
    else
      "$KUBECTL" --kubeconfig="$kubeconfig" --cache-dir="$cache" "$@"
    fi
    return
  fi
  local out rc=0
  if [[ $stdin == 1 ]]; then
    out=$("$KUBECTL" --kubeconfig="$kubeconfig" --cache-dir="$cache" "$@" <<<"$input") || rc=$?
  else
    out=$("$KUBECTL" --kubeconfig="$kubeconfig" --cache-dir="$cache" "$@") || rc=$?
  fi
  [[ -z $out ]] || printf '%s\n' "$out"
  await_crds "$out"
  return $rc
}

# split_crds writes the CRDs of the manifest file $1 into
# $KUBE_TEMP/crds.yaml and its other objects into $KUBE_TEMP/others.yaml;
# it fails when there are no others.
split_crds() {
  : >"$KUBE_TEMP/crds.yaml"
  : >"$KUBE_TEMP/others.yaml"
  awk -v crds="$KUBE_TEMP/crds.yaml" -v others="$KUBE_TEMP/others.yaml" '
    function flush() {
      if (doc ~ /kind: *CustomResourceDefinition/) printf "---\n%s", doc >crds
      else if (doc ~ /kind:/) printf "---\n%s", doc >others
      doc = ""
    }
    /^---/ { flush(); next }
    { doc = doc $0 "\n" }
    END { flush() }' "$1"
  [[ -s $KUBE_TEMP/others.yaml ]]
}

# kubectl_split runs kubectl (arguments after $1) with the objects of the
# manifest file $1 that are not CRDs at the users' cluster, then with its
# CRDs at the cluster storing them, as split_crds split them: kubectl maps
# every object of a file before it sends any, so a file's CRD serves its
# objects only at the next run. It fails when either run does.
kubectl_split() {
  local file=$1 a out rc=0 urc=0
  shift
  local crd_args=() user_args=()
  for a in "$@"; do
    if [[ $a == "$file" ]]; then
      crd_args+=("$KUBE_TEMP/crds.yaml") user_args+=("$KUBE_TEMP/others.yaml")
    else
      crd_args+=("$a") user_args+=("$a")
    fi
  done
  "$KUBECTL" --kubeconfig="$USER_KUBECONFIG" --cache-dir="$CACHE_DIR/user" "${user_args[@]}" || urc=$?
  out=$("$KUBECTL" --kubeconfig="$CRD_KUBECONFIG" --cache-dir="$CACHE_DIR/crd" "${crd_args[@]}") || rc=$?
  [[ -z $out ]] || printf '%s\n' "$out"
  await_crds "$out"
  [[ $rc != 0 ]] && return $rc
  return $urc
}

# await_crds waits until the users' cluster describes the groups of the
# CRDs kubectl's output says were created, changed or deleted as the
# cluster storing them does: the same versions and resources, in the same
# scopes, once the storing cluster's own discovery lists a created CRD's
# resource (or no longer lists a deleted one's; it takes it a moment, too).
await_crds() {
  local line name group verb i stored listed
  while read -r line; do
    [[ $line =~ ^customresourcedefinition\.apiextensions\.k8s\.io(/|\ \")([^ \"]+)\"?\ (created|configured|deleted)$ ]] || continue
    name=${BASH_REMATCH[2]}
    verb=${BASH_REMATCH[3]}
    group=${name#*.}
    for i in $(seq 1 100); do
      stored=$(scopes "$CRD_KUBECONFIG" "$group")
      listed=0
      grep -qx "$name" <<<"$stored" && listed=1
      if [[ ($verb == deleted && $listed == 0) || ($verb != deleted && $listed == 1) ]]; then
        [[ $(scopes "$USER_KUBECONFIG" "$group") == "$stored" ]] && break
      fi
      sleep 0.1
    done
  done <<<"$1"
}

# scopes lists the versions of group, and the namespaced and the
# cluster-scoped resources of its preferred version.
scopes() {
  "$KUBECTL" --kubeconfig="$1" --cache-dir="$CACHE_DIR/await" api-versions 2>/dev/null | grep "^$2/" || true
  echo ---
  "$KUBECTL" --kubeconfig="$1" --cache-dir="$CACHE_DIR/await" api-resources --api-group="$2" --namespaced=true -o name 2>/dev/null || true
  echo ---
  "$KUBECTL" --kubeconfig="$1" --cache-dir="$CACHE_DIR/await" api-resources --api-group="$2" --namespaced=false -o name 2>/dev/null || true
}

# As test/cmd/legacy-script.sh defines it.
create_and_use_new_namespace() {
  local ns_name
  ns_name="namespace-$(date +%s)-${RANDOM}"
  kube::log::status "Creating namespace ${ns_name}"
  kubectl create namespace "${ns_name}"
  kubectl config set-context "${CONTEXT}" --namespace="${ns_name}"
}

# section prints the nth section of apply.sh whose "## " heading holds
# $1, up to the next heading or the end of its function (which turns
# nounset off).
section() {
  awk -v h="$1" -v n="$2" '
    /^  ## / { if (on) exit; if (index($0, h) && ++seen == n) on = 1 }
    /^  set \+o nounset/ { if (on) exit }
    on' test/cmd/apply.sh
}

# run_kubectl_apply_cr_sections runs the sections of apply.sh's functions
# that use custom resources, as they are: a server dry run of a CR
# (client-side and server-side apply) and a CRD applied with its CR in one
# file. Their other sections need controllers for workloads and volumes
# and a node, which these clusters do not run.
run_kubectl_apply_cr_sections() {
  set -o nounset -o errexit
  create_and_use_new_namespace
  eval "$(section "## kubectl apply dry-run on CR" 1)"
  eval "$(section "## kubectl apply multiple resources with one failure during apply phase." 2)"
  eval "$(section "## kubectl apply dry-run on CR" 2)"
}

"$CASE"
`

// kubernetesSource is the k8s.io/kubernetes module of the version
// `make tools` builds kubectl and the apiservers from.
func kubernetesSource(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes")
	cmd.Dir = filepath.Join("..", "..", "hack", "tools", "kube")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("locating k8s.io/kubernetes (make tools downloads it): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// runKubectlCase runs the function name of test/cmd/crd.sh with the users'
// kubectl on userConfig and CRDs on crdConfig, and returns its output and
// whether it passed.
func runKubectlCase(t *testing.T, ctx context.Context, source, name string, users, crds *localcluster.APIServer) (string, error) {
	t.Helper()
	dir := t.TempDir()
	// create_and_use_new_namespace changes the kubeconfig's context: a copy.
	userConfig := filepath.Join(dir, "user.kubeconfig")
	data, err := os.ReadFile(users.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(userConfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	crdConfig := userConfig
	if crds != users {
		crdConfig = crds.KubeconfigPath
	}
	kubectlPath, err := filepath.Abs(filepath.Join("..", "..", "bin", "kubectl"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", kubectlCasesDriver)
	cmd.Env = append(os.Environ(),
		"KUBE_ROOT="+source, "CASE="+name, "KUBECTL="+kubectlPath, "TERM=xterm",
		"USER_KUBECONFIG="+userConfig, "CRD_KUBECONFIG="+crdConfig, "CACHE_DIR="+filepath.Join(dir, "cache"),
		"KUBECONFIG=", "TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kubectl's own custom-resource test cases of the kubernetes version
// crproxy builds against (test/cmd's crd.sh, discovery.sh, and the
// custom-resource parts of get.sh, events.sh and apply.sh; test/e2e/kubectl's
// "Kubectl validation" CRD cases), copied by running them from the
// module's source with their assertions: natively against the target,
// which serves the CRDs itself, and through crproxy, the CRDs installed at
// the target and everything else done in the client cluster. Each case
// must pass both ways.
func TestKubectlCustomResourceCases(t *testing.T) {
	ctx := testContextWithin(t, 10*time.Minute)
	source := kubernetesSource(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	kubectlApply(t, ctx, target, kubectlCasesRBAC)
	cfg := crproxytest.Config("client", client, target)
	wildcard := config.CustomResourceProxy{Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName}}
	cfg.Experimental.Proxy.CustomResources = map[string]config.CustomResourceProxy{
		"*.company.com/v1":               wildcard,
		"*.mygroup.example.com/v1alpha1": wildcard,
		"*.test.com/v1":                  wildcard,
		"*.bar.com/v1":                   wildcard,
		"*." + validationGroup + "/v1":   wildcard,
		"*.example.com/v1":               wildcard,
		"*.example.com/v1beta1":          wildcard,
	}
	crproxytest.StartProxy(t, crproxytest.Options{Client: client, Config: cfg, EmptyGroupVersions: true})
	var proxied []schema.GroupVersion
	for _, gv := range cfg.GroupVersions() {
		proxied = append(proxied, gv.GroupVersion)
	}

	for _, name := range []string{
		"run_crd_tests", // with run_non_native_resource_tests
		"run_assert_short_name_tests",
		"run_assert_singular_name_tests",
		"run_crd_deletion_recreation_tests",
		"run_ambiguous_shortname_tests",
		"run_explain_crd_with_additional_properties_tests",
		"run_deprecated_api_tests",      // get.sh
		"run_kubectl_events_tests",      // events.sh: a CR kind named as a native one
		"run_kubectl_apply_cr_sections", // apply.sh's custom-resource sections, see the driver
	} {
		t.Run(name, func(t *testing.T) {
			out, err := runKubectlCase(t, ctx, source, name, target, target)
			if err != nil {
				t.Fatalf("natively: %v\n%s", err, tail(out, 60))
			}
			// The native run's CRD changes reach the client through
			// crproxy a moment later; the run through crproxy starts
			// from the target's state, not from a discovery that still
			// shows the native run's CRDs.
			awaitSameDiscovery(t, ctx, client, target, proxied)
			out, err = runKubectlCase(t, ctx, source, name, client, target)
			if err != nil {
				t.Fatalf("through crproxy: %v\n%s", err, tail(out, 80))
			}
		})
	}
	// test/e2e/kubectl's "Kubectl validation" cases of custom resources.
	for i, c := range kubectlValidationCases {
		t.Run("Kubectl validation "+c.name, func(t *testing.T) {
			t.Run("natively", func(t *testing.T) { runValidationCase(t, ctx, source, c, 2*i, target, target) })
			t.Run("through crproxy", func(t *testing.T) { runValidationCase(t, ctx, source, c, 2*i+1, client, target) })
		})
	}
}

// awaitSameDiscovery waits until client's discovery describes the
// group/versions gvs as target's does (the same resources, scopes and
// kinds; absent on both when the target serves none), in each
// group/version's document and in the aggregated /apis, for at most 60 s.
func awaitSameDiscovery(t *testing.T, ctx context.Context, client, target *localcluster.APIServer, gvs []schema.GroupVersion) {
	t.Helper()
	describe := func(s *localcluster.APIServer) string {
		dc, err := discovery.NewDiscoveryClientForConfig(s.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		line := func(r metav1.APIResource) string {
			return fmt.Sprintf("%s namespaced=%v kind=%s", r.Name, r.Namespaced, r.Kind)
		}
		var out []string
		for _, gv := range gvs {
			list, err := dc.ServerResourcesForGroupVersion(gv.String())
			if err != nil {
				out = append(out, gv.String()+": none")
				continue
			}
			for _, r := range list.APIResources {
				out = append(out, gv.String()+" "+line(r))
			}
		}
		// kubectl reads the aggregated /apis, which the client's
		// aggregator merges from its own cache of crproxy's document.
		_, lists, err := dc.ServerGroupsAndResources()
		if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
			return "aggregated discovery: " + err.Error()
		}
		aggregated := map[string][]string{}
		for _, l := range lists {
			for _, r := range l.APIResources {
				aggregated[l.GroupVersion] = append(aggregated[l.GroupVersion], line(r))
			}
		}
		for _, gv := range gvs {
			rs := aggregated[gv.String()]
			if len(rs) == 0 {
				rs = []string{"none"}
			}
			for _, r := range rs {
				out = append(out, "aggregated "+gv.String()+" "+r)
			}
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	start := time.Now()
	crproxytest.Eventually(t, ctx, 60*time.Second, func() string {
		if want, got := describe(target), describe(client); want != got {
			return fmt.Sprintf("the client's discovery does not follow the target's:\ntarget:\n%s\nclient:\n%s", want, got)
		}
		return ""
	})
	t.Logf("the client's discovery followed the target's after %s", time.Since(start).Round(time.Millisecond))
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
