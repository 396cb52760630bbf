package config

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// base is a valid client and targets section for tests to add custom
// resources to.
const base = `client: {name: client}
targets:
  - {name: target, kubeconfig: target.kubeconfig}
  - {name: target-b, kubeconfig: target-b.kubeconfig}
`

// crs returns an experimental.proxy.customResources section with one entry
// per line, written in YAML flow style.
func crs(entries ...string) string {
	return "experimental:\n  proxy:\n    customResources:\n      " + strings.Join(entries, "\n      ") + "\n"
}

// basicCR is the documentation's basic entry, routed to "target".
const basicCR = `myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}}`

// problem is an expected field error: its path, its type and a piece of its
// detail (empty: not checked).
type problem struct {
	field  string
	typ    field.ErrorType
	detail string
}

// parseProblems parses doc and returns its problems; a Parse error that is not
// a *ValidationError fails the test.
func parseProblems(t *testing.T, doc string) field.ErrorList {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err == nil {
		if c == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		return nil
	}
	if c != nil {
		t.Errorf("Parse returned a config along with error %v", err)
	}
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse error %v (%T) is not a *ValidationError", err, err)
	}
	return verr.Errors
}

// checkProblems compares got with want, in order.
func checkProblems(t *testing.T, got field.ErrorList, want []problem) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Field == want[i].field && got[i].Type == want[i].typ &&
			strings.Contains(got[i].Error(), want[i].detail)
	}
	if ok {
		return
	}
	var b strings.Builder
	for _, e := range got {
		b.WriteString("\n  " + e.Error())
	}
	t.Errorf("got %d problem(s):%s\nwant %d: %+v", len(got), b.String(), len(want), want)
}
