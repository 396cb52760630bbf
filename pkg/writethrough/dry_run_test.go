package writethrough

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStandInName: unique, recognisably the name, and never longer than a
// name may be.
func TestStandInName(t *testing.T) {
	a, b := standInName("widget"), standInName("widget")
	if a == b || !strings.HasPrefix(a, "widget-dry-run-") {
		t.Fatalf("stand-in names %q, %q", a, b)
	}
	if long := standInName(strings.Repeat("x", 253)); len(long) != 253 {
		t.Fatalf("a 253-character name's stand-in has %d characters", len(long))
	}
}

// TestRefusedInStandIn: only RBAC in the stand-in namespace, or its
// absence, is the stand-in's refusal; the object's refusals pass through.
func TestRefusedInStandIn(t *testing.T) {
	status := func(code int, reason, message string) *Response {
		body, _ := json.Marshal(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code})
		return &Response{Code: code, ContentType: "application/json", Body: body}
	}
	for _, c := range []struct {
		resp *Response
		want bool
	}{
		{status(403, "Forbidden", `myresources.example.com "a-dry-run-1" is forbidden: User "u" cannot create resource "myresources" in API group "example.com" in the namespace "default"`), true},
		{status(404, "NotFound", `namespaces "default" not found`), true},
		{status(403, "Forbidden", `admission webhook "deny.example.com" denied the request: no`), false},
		{status(403, "Forbidden", `myresources.example.com "a" is forbidden: exceeded quota: q`), false},
		{status(422, "Invalid", `MyResource.example.com "a" is invalid: spec.name: Required value`), false},
		{&Response{Code: 201}, false},
	} {
		if got := refusedInStandIn(c.resp); got != c.want {
			t.Errorf("%d %s: %v, want %v", c.resp.Code, c.resp.Body, got, c.want)
		}
	}
}
