package server

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// The reviewer sends the review the webhook authorizer would, and maps
// its answer (or its failure) as the webhook authorizer does.
func TestSubjectAccessReviewer(t *testing.T) {
	var sent []authorizationv1.SubjectAccessReviewSpec
	answer := authorizationv1.SubjectAccessReviewStatus{}
	var fail error
	client := fake.NewClientset()
	client.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		sent = append(sent, review.Spec)
		if fail != nil {
			return true, nil, fail
		}
		return true, &authorizationv1.SubjectAccessReview{Status: answer}, nil
	})
	r := &subjectAccessReviewer{reviews: client.AuthorizationV1().SubjectAccessReviews(), backoff: wait.Backoff{Steps: 1}}
	alice := &user.DefaultInfo{Name: "alice", UID: "u1", Groups: []string{"devs"}, Extra: map[string][]string{"scopes": {"a", "b"}}}
	fieldSel, _ := fields.ParseSelector("metadata.name=x,spec.n!=y")
	labelSel, _ := labels.Parse("app in (a,b),!gone,tier")
	resource := authorizer.AttributesRecord{
		User: alice, Verb: "list", Namespace: "ns", APIGroup: "example.com", APIVersion: "v1", Resource: "things",
		Subresource: "status", Name: "n", ResourceRequest: true, FieldSelectorRequirements: fieldSel.Requirements(),
		LabelSelectorRequirements: mustRequirements(labelSel),
	}
	nonResource := authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/metrics"}

	answer = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "rbac"}
	if d, reason, err := r.Authorize(context.Background(), resource); d != authorizer.DecisionAllow || reason != "rbac" || err != nil {
		t.Errorf("allowed: %v %q %v", d, reason, err)
	}
	wantUser := authorizationv1.SubjectAccessReviewSpec{User: "alice", UID: "u1", Groups: []string{"devs"}, Extra: map[string]authorizationv1.ExtraValue{"scopes": {"a", "b"}}}
	want := wantUser
	want.ResourceAttributes = &authorizationv1.ResourceAttributes{
		Namespace: "ns", Verb: "list", Group: "example.com", Version: "v1", Resource: "things", Subresource: "status", Name: "n",
		FieldSelector: &authorizationv1.FieldSelectorAttributes{Requirements: []metav1.FieldSelectorRequirement{
			{Key: "metadata.name", Operator: metav1.FieldSelectorOpIn, Values: []string{"x"}},
			{Key: "spec.n", Operator: metav1.FieldSelectorOpNotIn, Values: []string{"y"}},
		}},
		LabelSelector: &authorizationv1.LabelSelectorAttributes{Requirements: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}},
			{Key: "gone", Operator: metav1.LabelSelectorOpDoesNotExist},
			{Key: "tier", Operator: metav1.LabelSelectorOpExists},
		}},
	}
	if !reflect.DeepEqual(sent[0], want) {
		t.Errorf("resource review\n got %+v\nwant %+v", sent[0], want)
	}

	answer = authorizationv1.SubjectAccessReviewStatus{Denied: true, Reason: "no"}
	if d, reason, err := r.Authorize(context.Background(), nonResource); d != authorizer.DecisionDeny || reason != "no" || err != nil {
		t.Errorf("denied: %v %q %v", d, reason, err)
	}
	want = wantUser
	want.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}
	if !reflect.DeepEqual(sent[1], want) {
		t.Errorf("non-resource review\n got %+v\nwant %+v", sent[1], want)
	}

	answer = authorizationv1.SubjectAccessReviewStatus{}
	if d, _, err := r.Authorize(context.Background(), nonResource); d != authorizer.DecisionNoOpinion || err != nil {
		t.Errorf("no opinion: %v %v", d, err)
	}
	answer = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Denied: true}
	if d, _, err := r.Authorize(context.Background(), nonResource); d != authorizer.DecisionDeny || err == nil {
		t.Errorf("allowed and denied: %v %v, want deny with an error", d, err)
	}
	fail = errors.New("client cluster down")
	if d, _, err := r.Authorize(context.Background(), nonResource); d != authorizer.DecisionNoOpinion || err == nil {
		t.Errorf("failed review: %v %v, want no opinion with the error", d, err)
	}
}

func mustRequirements(s labels.Selector) labels.Requirements {
	reqs, _ := s.Requirements()
	return reqs
}

// The authorizer newAuthorizer builds lets system:masters and the
// always-allowed paths pass without asking, asks the client cluster about
// everyone else, and remembers its answers.
func TestDelegatedAuthorizer(t *testing.T) {
	reviews := 0
	client := fake.NewClientset()
	client.PrependReactor("create", "subjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		reviews++
		return true, &authorizationv1.SubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}}, nil
	})
	opts := options.NewDelegatingAuthorizationOptions()
	a, err := delegatedAuthorizer(opts, client.AuthorizationV1().SubjectAccessReviews(), clocktesting.NewFakeClock(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	masters := &user.DefaultInfo{Name: "root", Groups: []string{"system:masters"}}
	alice := &user.DefaultInfo{Name: "alice"}
	for _, c := range []struct {
		what        string
		attrs       authorizer.AttributesRecord
		wantReviews int
	}{
		{"system:masters", authorizer.AttributesRecord{User: masters, Verb: "get", Path: "/metrics"}, 0},
		{"/healthz", authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/healthz"}, 0},
		{"alice, asked", authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/metrics"}, 1},
		{"alice again, remembered", authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/metrics"}, 1},
		{"alice, another path", authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/status"}, 2},
	} {
		if d, _, err := a.Authorize(context.Background(), c.attrs); d != authorizer.DecisionAllow || err != nil {
			t.Errorf("%s: %v %v, want allowed", c.what, d, err)
		}
		if reviews != c.wantReviews {
			t.Errorf("%s: %d reviews in all, want %d", c.what, reviews, c.wantReviews)
		}
	}
}
