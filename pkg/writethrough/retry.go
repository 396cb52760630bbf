package writethrough

import (
	"context"
	"net/http"

	"github.com/crproxy/crproxy/pkg/store"
)

// maxConflictRetries bounds the retries of a write crproxy itself made
// conditional on the resourceVersion it read (as the kube-apiserver
// retries an unconditional update or patch on a conflict).
const maxConflictRetries = 3

// retryOnConflict is the one conflict loop of the writes, as the
// kube-apiserver's GuaranteedUpdate retries its tryUpdate: attempt makes
// and sends the write from current, the object as crproxy last read it.
// When crproxy made the write conditional on current's resourceVersion
// (conditional) and the target answers 409 Conflict, the object is read
// again at the target (refresh, with checked, the object the ownership
// check saw) and attempt runs with it, at most maxConflictRetries times.
// A conflict on a condition the caller set is the caller's answer.
//
// Two other reruns are not conflict loops: Write runs a whole write again,
// checking at the target, when the object its checks saw was replaced
// (errCheckedReplaced), and an apply that would create sends once more as
// an apply to the object another caller created meanwhile (patch).
//
// It returns the last answer; gone reports that the retries stopped on a
// conflict because the object is gone or no longer this client's (resp is
// then that conflict). An error of attempt or of the read ends it.
func (w *Writer) retryOnConflict(ctx context.Context, req *Request, checked, current *store.Object, conditional bool, attempt func(current *store.Object) (*Response, error)) (resp *Response, gone bool, err error) {
	for n := 0; ; n++ {
		if resp, err = attempt(current); err != nil {
			return nil, false, err
		}
		if !conditional || resp.Code != http.StatusConflict || n >= maxConflictRetries {
			return resp, false, nil
		}
		fresh, err := w.refresh(ctx, req, checked)
		if err != nil {
			return nil, false, err
		}
		if fresh == nil {
			return resp, true, nil
		}
		current = fresh
	}
}
