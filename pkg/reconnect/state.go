package reconnect

import (
	"errors"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// State is a target's connection state.
type State string

// The connection states.
const (
	// Connected: the target answers and the mirror's watches run.
	Connected State = "Connected"
	// Unreachable: requests to the target fail in transport (refused,
	// reset, timed out) or it answers 503/504; reads are served from the
	// mirror, writes fail with 503.
	Unreachable State = "Unreachable"
	// Forbidden: the target answers but refuses the identity (401/403)
	// what the mirror needs.
	Forbidden State = "Forbidden"
	// Resyncing: the target answers again and the mirror is catching up
	// (resuming watches or relisting).
	Resyncing State = "Resyncing"
)

// States lists every State, for reports that enumerate them (a metric
// with one series per state).
var States = []State{Connected, Unreachable, Forbidden, Resyncing}

// Status is a snapshot of a target's connection.
type Status struct {
	// Target is the target's ID.
	Target string `json:"target"`
	// State is the current state.
	State State `json:"state"`
	// Since is when the target entered State.
	Since time.Time `json:"since"`
	// LastError is the last error that moved the state, if any.
	LastError string `json:"lastError,omitempty"`
	// LastEvent is when the mirror last received an event or bookmark
	// from the target (zero when never).
	LastEvent time.Time `json:"lastEvent,omitzero"`
	// Reconnects counts the returns from Unreachable or Forbidden.
	Reconnects int `json:"reconnects"`
}

// Classify tells what an error from a target says about the connection:
// Unreachable for transport failures and 503/504 answers, Forbidden for
// 401/403, and "" for nil and for every other error (the target answered,
// so it is reachable, whatever it thought of the request).
func Classify(err error) State {
	if err == nil {
		return ""
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		switch status.Status().Code {
		case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return Unreachable
		case http.StatusUnauthorized, http.StatusForbidden:
			return Forbidden
		case 0:
			return Unreachable
		}
		return ""
	}
	return Unreachable
}
