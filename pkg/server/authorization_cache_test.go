package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	testingclock "k8s.io/utils/clock/testing"
)

// TestDecisionCache asks the cache what a delegating authorizer would be
// asked, and counts what reaches the authorizer: a repeated request is
// answered from the cache until its TTL ends, any field of the user or the
// request that differs is asked anew, and errors are not remembered.
func TestDecisionCache(t *testing.T) {
	clock := testingclock.NewFakeClock(time.Now())
	var asked int
	var fail bool
	delegate := authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		asked++
		if fail {
			return authorizer.DecisionNoOpinion, "", errors.New("the client cluster did not answer")
		}
		if a.GetName() == "secret" {
			return authorizer.DecisionDeny, "not that one", nil
		}
		return authorizer.DecisionAllow, "", nil
	})
	c := newDecisionCache(delegate, 10*time.Second, 2*time.Second, clock)
	base := authorizer.AttributesRecord{
		User:            &user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"dev"}, Extra: map[string][]string{"scope": {"a"}}},
		Verb:            "get",
		Namespace:       "default",
		APIGroup:        "example.com",
		APIVersion:      "v1",
		Resource:        "myresources",
		Name:            "one",
		ResourceRequest: true,
	}
	ask := func(a authorizer.AttributesRecord) authorizer.Decision {
		t.Helper()
		d, _, _ := c.Authorize(context.Background(), a)
		return d
	}
	expectAsked := func(want int, what string) {
		t.Helper()
		if asked != want {
			t.Fatalf("%s: the authorizer was asked %d times, want %d", what, asked, want)
		}
	}

	if ask(base) != authorizer.DecisionAllow {
		t.Fatal("not allowed")
	}
	ask(base)
	expectAsked(1, "the same request twice")

	variants := map[string]func(*authorizer.AttributesRecord){
		"another user": func(a *authorizer.AttributesRecord) {
			a.User = &user.DefaultInfo{Name: "bob", UID: "1", Groups: []string{"dev"}}
		},
		"another group": func(a *authorizer.AttributesRecord) {
			a.User = &user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"ops"}}
		},
		"groups joined": func(a *authorizer.AttributesRecord) {
			a.User = &user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"de", "v"}}
		},
		"another extra": func(a *authorizer.AttributesRecord) {
			a.User = &user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"dev"}, Extra: map[string][]string{"scope": {"b"}}}
		},
		"another verb":  func(a *authorizer.AttributesRecord) { a.Verb = "delete" },
		"another name":  func(a *authorizer.AttributesRecord) { a.Name = "two" },
		"no name":       func(a *authorizer.AttributesRecord) { a.Name = "" },
		"another ns":    func(a *authorizer.AttributesRecord) { a.Namespace = "kube-system" },
		"a subresource": func(a *authorizer.AttributesRecord) { a.Subresource = "status" },
		"a field selector": func(a *authorizer.AttributesRecord) {
			a.FieldSelectorRequirements = fields.Requirements{{Field: "metadata.name", Operator: selection.Equals, Value: "one"}}
		},
		"a path": func(a *authorizer.AttributesRecord) {
			*a = authorizer.AttributesRecord{User: base.User, Verb: "get", Path: "/metrics"}
		},
	}
	n := 1
	for what, change := range variants {
		a := base
		change(&a)
		ask(a)
		n++
		expectAsked(n, what)
		ask(a)
		expectAsked(n, what+", again")
	}

	deny := base
	deny.Name = "secret"
	if ask(deny) != authorizer.DecisionDeny {
		t.Fatal("not denied")
	}
	ask(deny)
	n++
	expectAsked(n, "a denied request twice")
	clock.Step(3 * time.Second)
	ask(deny)
	n++
	expectAsked(n, "a denied request after the deny TTL")
	ask(base)
	expectAsked(n, "an allowed request within the allow TTL")
	clock.Step(8 * time.Second)
	ask(base)
	n++
	expectAsked(n, "an allowed request after the allow TTL")

	fail = true
	other := base
	other.Name = "three"
	if d, _, err := c.Authorize(context.Background(), other); err == nil || d == authorizer.DecisionAllow {
		t.Fatalf("an error passed as %v, %v", d, err)
	}
	fail = false
	if ask(other) != authorizer.DecisionAllow {
		t.Fatal("an error was remembered")
	}
	n += 2
	expectAsked(n, "after an error")
}

// Selector lists that print alike are different requests: a value may hold
// the characters that separate requirements when printed.
func TestDecisionKeysOfSelectorsThatPrintAlike(t *testing.T) {
	base := authorizer.AttributesRecord{
		User: &user.DefaultInfo{Name: "alice"}, Verb: "list", Namespace: "default",
		APIGroup: "example.com", APIVersion: "v1", Resource: "myresources", ResourceRequest: true,
	}
	two, one := base, base
	two.FieldSelectorRequirements = fields.Requirements{
		{Operator: selection.Equals, Field: "spec.owner", Value: "alice"},
		{Operator: selection.Equals, Field: "spec.x", Value: "y"},
	}
	one.FieldSelectorRequirements = fields.Requirements{
		{Operator: selection.Equals, Field: "spec.owner", Value: "alice} {= spec.x y"},
	}
	k2, _ := decisionKey(two)
	k1, _ := decisionKey(one)
	if k1 == k2 {
		t.Fatalf("two field selectors share the key %q", k1)
	}
	nobody := base
	nobody.User = nil
	dash := base
	dash.User = &user.DefaultInfo{Name: "-"}
	kn, _ := decisionKey(nobody)
	kd, _ := decisionKey(dash)
	if kn == kd {
		t.Fatalf("no user and a user named - share the key %q", kn)
	}
}
