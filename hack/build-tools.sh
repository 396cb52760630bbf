#!/usr/bin/env bash
# Builds the test clusters' binaries from their Go modules into bin/:
# etcd (hack/tools/etcd) and kube-apiserver, kube-controller-manager and
# kubectl (hack/tools/kube).
# A binary already there at the right version is left alone, so a second run
# builds nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CRPROXY_BIN_DIR:-$root/bin}
kube_version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$root/hack/tools/kube/go.mod")
etcd_version=$(sed -n 's/^require go.etcd.io\/etcd\/server\/v3 v\([0-9.]*\)$/\1/p' "$root/hack/tools/etcd/go.mod")
mkdir -p "$bin"

step() { printf '[tools] %s\n' "$*" >&2; }

# with_progress WHAT NEXT COMMAND...: runs COMMAND and says every 20 s that
# it is still at WHAT (and what comes after), so a long build is never
# silent.
with_progress() {
  local what=$1 next=$2; shift 2
  local started=$SECONDS
  ( while sleep 20; do step "still building $what ($((SECONDS - started)) s so far)${next:+; then $next}"; done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  step "$what: done in $((SECONDS - started)) s"
  return $rc
}

have() { # have NAME WANT COMMAND...: is NAME there and does COMMAND print WANT?
  local name=$1 want=$2; shift 2
  [ -x "$bin/$name" ] && "$@" 2>/dev/null | grep -qF -- "$want"
}

if have etcd "etcd Version: $etcd_version" "$bin/etcd" --version; then
  step "etcd $etcd_version: up to date"
else
  step "etcd $etcd_version: building (about a minute)"
  with_progress "etcd" "kube-apiserver and kubectl" bash -c "cd '$root/hack/tools/etcd' && go build -trimpath -o '$bin/etcd' ./cmd/etcd"
fi

stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  minor=${kube_version#v1.}; minor=${minor%%.*}
  stamp+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
build_kube() { # build_kube NAME NEXT
  step "$1 $kube_version: building from k8s.io/kubernetes (several minutes on 2 cores)"
  with_progress "$1" "$2" bash -c "cd '$root/hack/tools/kube' && go build -trimpath -ldflags '-s -w$stamp' -o '$bin/$1' 'k8s.io/kubernetes/cmd/$1'"
}
if have kube-apiserver "Kubernetes $kube_version" "$bin/kube-apiserver" --version; then
  step "kube-apiserver $kube_version: up to date"
else
  build_kube kube-apiserver kube-controller-manager
fi
if have kube-controller-manager "Kubernetes $kube_version" "$bin/kube-controller-manager" --version; then
  step "kube-controller-manager $kube_version: up to date"
else
  build_kube kube-controller-manager kubectl
fi
if have kubectl "\"gitVersion\": \"$kube_version\"" "$bin/kubectl" version --client -o json; then
  step "kubectl $kube_version: up to date"
else
  build_kube kubectl ""
fi
