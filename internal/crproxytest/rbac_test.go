package crproxytest

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

func TestClientRBAC(t *testing.T) {
	rule := rbacv1.PolicyRule{APIGroups: []string{"example.com"}, Resources: []string{"*"}, Verbs: []string{"*"}}
	docs := strings.Split(ClientRBAC("tests-client", rule, NamespacesRule), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents, want a ClusterRole and its binding", len(docs))
	}
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &binding); err != nil {
		t.Fatal(err)
	}
	if role.Kind != "ClusterRole" || role.Name != "tests-client" || len(role.Rules) != 2 || role.Rules[1].Resources[0] != "namespaces" {
		t.Errorf("role %+v", role)
	}
	if binding.Kind != "ClusterRoleBinding" || binding.RoleRef.Name != "tests-client" || binding.RoleRef.Kind != "ClusterRole" ||
		len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "User" || binding.Subjects[0].Name != "loft:vcluster:p-default:client" {
		t.Errorf("binding %+v", binding)
	}
}
