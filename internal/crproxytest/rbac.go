package crproxytest

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/pkg/config"
)

// NamespacesRule is what crproxy needs of a target's namespaces as the
// client identity: it creates the namespace a write goes to when the
// target lacks it (the documentation's target RBAC grants the same).
var NamespacesRule = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "create"}}

// ClientRBAC is the YAML of a ClusterRole name holding rules and of the
// ClusterRoleBinding that grants it to the identity of the
// documentation's client (loft:vcluster:p-default:client): what a
// target's owner grants a tenant for a resource of a test's own. Apply it
// with ApplyYAML.
func ClientRBAC(name string, rules ...rbacv1.PolicyRule) string {
	role := rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      rules,
	}
	binding := rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName,
			Name: config.Client{Project: "default", Name: "client"}.Identity()}},
	}
	r, err := yaml.Marshal(role)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	b, err := yaml.Marshal(binding)
	if err != nil {
		panic(err)
	}
	return string(r) + "---\n" + string(b)
}
