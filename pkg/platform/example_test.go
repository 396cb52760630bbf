package platform_test

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/platform"
)

func ExampleChecker() {
	// A management cluster that lets every client use the targets of
	// project default, and no other.
	management := fake.NewClientset()
	management.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		review.Status.Allowed = review.Spec.ResourceAttributes.Namespace == "p-default"
		return true, review, nil
	})

	checker := platform.New(management.AuthorizationV1(), platform.Options{
		Client:  config.Client{Name: "client"},
		Targets: []config.Target{{Name: "target"}, {Name: "target", Project: "other-project"}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go checker.Run(ctx)
	if err := checker.WaitFirst(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range checker.Decisions() {
		fmt.Println(d.Target, d.State)
	}
	gr := schema.GroupResource{Group: "example.com", Resource: "myresources"}
	fmt.Println(platform.Admit(gr, checker.Decision("other-project/target"), false))
	// Output:
	// default/target Allowed
	// other-project/target Denied
	// crproxy's client "loft:vcluster:p-default:client" may not use target "other-project/target": it needs the verb use on virtualclusterinstances.management.loft.sh "target" in namespace p-other-project of the platform's management cluster (check: kubectl auth can-i use virtualclusterinstances/target --as=loft:vcluster:p-default:client -n p-other-project)
}
