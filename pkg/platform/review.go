package platform

import (
	"errors"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// What the Resource Proxy documentation's platform RBAC grants, and so what
// crproxy asks the management cluster about.
const (
	// Group is the API group of VirtualClusterInstances.
	Group = "management.loft.sh"
	// Resource is the resource of the target virtual clusters.
	Resource = "virtualclusterinstances"
	// Verb is the verb a client needs on its target's
	// VirtualClusterInstance.
	Verb = "use"
)

// Namespace is the management cluster's namespace of a platform project:
// p-<project>.
func Namespace(project string) string { return "p-" + project }

// NewReview is the SubjectAccessReview crproxy sends: may identity use the
// VirtualClusterInstance name in the namespace of project? The review
// carries the group system:authenticated, as the request of
// `kubectl auth can-i ... --as=<identity>` does, so that the two agree.
func NewReview(identity, name, project string) *authorizationv1.SubjectAccessReview {
	return &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   identity,
			Groups: []string{user.AllAuthenticated},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: Namespace(project),
				Verb:      Verb,
				Group:     Group,
				Resource:  Resource,
				Name:      name,
			},
		},
	}
}

// verdict reads a review's answer: allowed, and why. An explicit denial wins
// over an allowance, as in the apiserver's union of authorizers.
func verdict(s authorizationv1.SubjectAccessReviewStatus) (allowed bool, reason string) {
	reason = s.Reason
	if s.EvaluationError != "" {
		if reason != "" {
			reason += "; "
		}
		reason += "evaluation error: " + s.EvaluationError
	}
	return s.Allowed && !s.Denied, reason
}

// describe says why a check failed in words that name no address: it ends
// up in answers to the client's users, and where the management cluster
// lives is not theirs to learn. The full error goes to the status and log.
func describe(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		switch status.Status().Code {
		case http.StatusForbidden:
			return "the platform's management cluster refused crproxy's SubjectAccessReview (403 Forbidden): " +
				"the identity of crproxy's platform kubeconfig needs create on subjectaccessreviews.authorization.k8s.io"
		case http.StatusUnauthorized:
			return "the platform's management cluster did not accept the credentials of crproxy's platform kubeconfig (401 Unauthorized)"
		}
	}
	return reconnect.Describe(err, "the platform's management cluster")
}
