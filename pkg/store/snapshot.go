package store

import (
	"github.com/google/btree"
)

// btreeDegree is the degree of the object trees. Every event copies one
// root-to-leaf path of the writer's tree (the previous snapshot keeps the
// old one), so the degree sets the memory an event's snapshot costs; see
// the package documentation.
const btreeDegree = 8

// objectTree is the index of a cache: *Object ordered by compareKeys.
type objectTree = btree.BTreeG[*Object]

func newObjectTree() *objectTree { return btree.NewG(btreeDegree, lessObject) }

// Snapshot is an immutable view of a cache at one resourceVersion: what a
// list, a paginated list (continue token) or a resourceVersionMatch=Exact
// read is answered from. Taking one is O(1) (it shares the tree's nodes with
// the cache, copy-on-write) and it stays valid and unchanged however the
// cache moves on. A Snapshot is safe for concurrent use.
type Snapshot struct {
	tree *objectTree
	rv   uint64
}

// ResourceVersion is the resourceVersion the snapshot shows the state at:
// the list's metadata.resourceVersion.
func (s *Snapshot) ResourceVersion() uint64 { return s.rv }

// Len is the number of objects.
func (s *Snapshot) Len() int { return s.tree.Len() }

// Get returns the object namespace/name (namespace "" for a cluster-scoped
// object).
func (s *Snapshot) Get(namespace, name string) (*Object, bool) {
	return s.tree.Get(&Object{Namespace: namespace, Name: name})
}

// Ascend calls fn for the objects in key order, until fn returns false.
//
// The order is that of the strings namespace+"/"+name, which is the order of
// the target's etcd keys and therefore of a kube-apiserver's lists
// (namespace, then name, except that a namespace sorts after the namespaces
// it is a prefix of followed by a byte below '/', e.g. "a-b" before "a").
//
// When namespace is not "", only that namespace's objects are visited, as
// a range scan. When afterName is not "", the walk starts strictly after
// the key (afterNamespace, afterName), which need not exist: this is how a
// continue token resumes.
func (s *Snapshot) Ascend(namespace, afterNamespace, afterName string, fn func(*Object) bool) {
	var pivot *Object
	after := afterName != ""
	if after {
		pivot = &Object{Namespace: afterNamespace, Name: afterName}
		if namespace != "" && compareKeys(afterNamespace, afterName, namespace, "") < 0 {
			// The after-key lies before the namespace: start at its
			// beginning ("" sorts before every name).
			pivot, after = &Object{Namespace: namespace}, false
		}
	} else if namespace != "" {
		pivot = &Object{Namespace: namespace}
	}
	iter := func(o *Object) bool {
		if after && o.Namespace == pivot.Namespace && o.Name == pivot.Name {
			return true
		}
		if namespace != "" && o.Namespace != namespace {
			return false
		}
		return fn(o)
	}
	if pivot == nil {
		s.tree.Ascend(iter)
		return
	}
	s.tree.AscendGreaterOrEqual(pivot, iter)
}
