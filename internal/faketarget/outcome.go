package faketarget

import (
	"errors"
	"net/http"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Code is the HTTP code a request's error answers: 200 without one, the
// Status's code for an API error, -1 for any other error.
func Code(err error) int {
	var status apierrors.APIStatus
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &status):
		return int(status.Status().Code)
	}
	return -1
}

// Warnings records the Warnings a request's handling adds; give it to
// warning.WithWarningRecorder. It keeps every one, repeats included
// (the apiserver's recorder drops repeats and bounds their size), so a
// test sees each time crproxy adds one. It is safe for concurrent use.
type Warnings struct {
	mu   sync.Mutex
	text []string
}

// AddWarning records text.
func (w *Warnings) AddWarning(_, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text = append(w.text, text)
}

// List is the recorded Warnings, in order.
func (w *Warnings) List() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.text...)
}

// String is the recorded Warnings joined by "; ", "" for none.
func (w *Warnings) String() string { return strings.Join(w.List(), "; ") }
