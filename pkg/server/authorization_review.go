package server

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/util/webhook"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// subjectAccessReviewer asks the client cluster whether a caller may make
// a request, by SubjectAccessReview, and remembers nothing: decisionCache,
// in front of it, does. It takes the place of k8s.io/apiserver's webhook
// authorizer, which keeps every review's JSON in a cache of its own even
// with its TTLs at 0 (an expired entry leaves only when evicted): 8,192
// reviews of up to 10 KB of names and paths a caller made up, about 80 MiB
// that any authenticated caller without RBAC could fill.
//
// The review it sends is the webhook authorizer's (v0.36), selectors
// included, and so are its retries and its answer on an error (no
// opinion, with the error).
type subjectAccessReviewer struct {
	reviews authorizationv1client.SubjectAccessReviewInterface
	backoff wait.Backoff
}

// Authorize implements authorizer.Authorizer.
func (s *subjectAccessReviewer) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	review := &authorizationv1.SubjectAccessReview{Spec: subjectAccessReviewSpec(a)}
	var answer *authorizationv1.SubjectAccessReview
	err := webhook.WithExponentialBackoff(ctx, s.backoff, func() error {
		var err error
		answer, err = s.reviews.Create(ctx, review, metav1.CreateOptions{})
		return err
	}, webhook.DefaultShouldRetry)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", fmt.Errorf("SubjectAccessReview in the client cluster: %w", err)
	}
	st := answer.Status
	switch {
	case st.Denied && st.Allowed:
		return authorizer.DecisionDeny, st.Reason, fmt.Errorf("the SubjectAccessReview answered both allowed and denied")
	case st.Denied:
		return authorizer.DecisionDeny, st.Reason, nil
	case st.Allowed:
		return authorizer.DecisionAllow, st.Reason, nil
	}
	return authorizer.DecisionNoOpinion, st.Reason, nil
}

// subjectAccessReviewSpec is the review of a request's attributes.
func subjectAccessReviewSpec(a authorizer.Attributes) authorizationv1.SubjectAccessReviewSpec {
	var spec authorizationv1.SubjectAccessReviewSpec
	if u := a.GetUser(); u != nil {
		spec.User, spec.UID, spec.Groups = u.GetName(), u.GetUID(), u.GetGroups()
		if extra := u.GetExtra(); extra != nil {
			spec.Extra = make(map[string]authorizationv1.ExtraValue, len(extra))
			for k, v := range extra {
				spec.Extra[k] = authorizationv1.ExtraValue(v)
			}
		}
	}
	if !a.IsResourceRequest() {
		spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: a.GetPath(), Verb: a.GetVerb()}
		return spec
	}
	attrs := &authorizationv1.ResourceAttributes{
		Namespace: a.GetNamespace(), Verb: a.GetVerb(), Group: a.GetAPIGroup(), Version: a.GetAPIVersion(),
		Resource: a.GetResource(), Subresource: a.GetSubresource(), Name: a.GetName(),
	}
	// Selectors only narrow a request: the requirements that could be
	// read are sent even if others could not, and operators the review
	// cannot express are left out (the check is then broader).
	if reqs := fieldSelectorRequirements(a); len(reqs) > 0 {
		attrs.FieldSelector = &authorizationv1.FieldSelectorAttributes{Requirements: reqs}
	}
	if reqs := labelSelectorRequirements(a); len(reqs) > 0 {
		attrs.LabelSelector = &authorizationv1.LabelSelectorAttributes{Requirements: reqs}
	}
	spec.ResourceAttributes = attrs
	return spec
}

func fieldSelectorRequirements(a authorizer.Attributes) []metav1.FieldSelectorRequirement {
	reqs, _ := a.GetFieldSelector()
	var out []metav1.FieldSelectorRequirement
	for _, r := range reqs {
		switch r.Operator {
		case selection.Equals, selection.DoubleEquals, selection.In:
			out = append(out, metav1.FieldSelectorRequirement{Key: r.Field, Operator: metav1.FieldSelectorOpIn, Values: []string{r.Value}})
		case selection.NotEquals, selection.NotIn:
			out = append(out, metav1.FieldSelectorRequirement{Key: r.Field, Operator: metav1.FieldSelectorOpNotIn, Values: []string{r.Value}})
		}
	}
	return out
}

func labelSelectorRequirements(a authorizer.Attributes) []metav1.LabelSelectorRequirement {
	reqs, _ := a.GetLabelSelector()
	var out []metav1.LabelSelectorRequirement
	for _, r := range reqs {
		req := metav1.LabelSelectorRequirement{Key: r.Key()}
		if values := r.ValuesUnsorted(); len(values) > 0 {
			req.Values = values
		}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			req.Operator = metav1.LabelSelectorOpIn
		case selection.NotEquals, selection.NotIn:
			req.Operator = metav1.LabelSelectorOpNotIn
		case selection.Exists:
			req.Operator = metav1.LabelSelectorOpExists
		case selection.DoesNotExist:
			req.Operator = metav1.LabelSelectorOpDoesNotExist
		default:
			continue
		}
		out = append(out, req)
	}
	return out
}
