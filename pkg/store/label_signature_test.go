package store

import (
	"fmt"
	"testing"
)

// TestLabelSignatureNeverRulesOutALabel checks what a list's label filter
// rests on: an object built by the store, from JSON or from its bbolt
// record, may have every label key and pair it carries, and is ruled out
// for most it does not.
func TestLabelSignatureNeverRulesOutALabel(t *testing.T) {
	labels := map[string]string{"app": "web", "crproxy.dev/owner": "client", "tier": ""}
	fromJSON := obj(t, "ns", "a", "u1", 3, labels, 0)
	var in interner
	fromRecord, err := decodeRecord([]byte(fromJSON.Key()), appendRecord(nil, fromJSON), &in)
	if err != nil {
		t.Fatal(err)
	}
	all := LabelSignature(0)
	for k, v := range labels {
		all |= LabelKeySignature(k) | LabelPairSignature(k, v)
	}
	for _, o := range []*Object{fromJSON, fromRecord} {
		for k, v := range labels {
			if !o.MayHave(LabelKeySignature(k)) || !o.MayHave(LabelPairSignature(k, v)) {
				t.Errorf("%s: ruled out its own label %s=%s", o, k, v)
			}
		}
		if !o.MayHave(all) {
			t.Errorf("%s: ruled out its labels together", o)
		}
		ruledOut := 0
		for i := range 1000 {
			if !o.MayHave(LabelPairSignature("app", fmt.Sprint("other-", i))) {
				ruledOut++
			}
		}
		// Six labels and pairs set at most 12 of 64 bits: a pair it does
		// not carry has both its bits set by chance about 1 time in 28.
		if ruledOut < 900 {
			t.Errorf("%s: ruled out %d of 1000 pairs it does not carry", o, ruledOut)
		}
	}
	if o := (&Object{Name: "built-elsewhere"}); !o.MayHave(LabelKeySignature("app")) {
		t.Error("an Object without a signature was ruled out")
	}
}
