package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// writeJSON answers code with v encoded as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	writeRawJSON(w, code, data)
}

// writeRawJSON answers code with JSON the caller already encoded.
func writeRawJSON(w http.ResponseWriter, code int, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// writeError answers err as a Kubernetes Status, with the status code the
// Status carries; errors that are not API errors are internal errors.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status.Code == http.StatusTooManyRequests || status.Code == http.StatusServiceUnavailable {
		if status.Details != nil && status.Details.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(status.Details.RetryAfterSeconds)))
		}
	}
	writeJSON(w, int(status.Code), status)
}

// statusOf converts err to the Status a kube-apiserver would send.
func statusOf(err error) *metav1.Status {
	var apiStatus apierrors.APIStatus
	if s, ok := err.(apierrors.APIStatus); ok {
		apiStatus = s
	} else {
		apiStatus = apierrors.NewInternalError(err)
	}
	status := apiStatus.Status()
	status.Kind = "Status"
	status.APIVersion = "v1"
	if status.Status == "" {
		status.Status = metav1.StatusFailure
	}
	if status.Code == 0 {
		status.Code = http.StatusInternalServerError
	}
	return &status
}
