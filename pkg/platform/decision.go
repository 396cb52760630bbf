package platform

import "time"

// State is where a target's check stands.
type State string

// The states of a target's check.
const (
	// Pending: the management cluster has not been asked yet. Nothing of
	// the target is served or written (503).
	Pending State = "Pending"
	// Allowed: the management cluster's last answer allows the client to
	// use the target. Its resources are mirrored, served and written.
	Allowed State = "Allowed"
	// Denied: the management cluster's last answer denies it. Nothing is
	// mirrored, served or written (403), and what was mirrored is
	// forgotten.
	Denied State = "Denied"
	// Unknown: the last check failed (the management cluster is
	// unreachable or answered an error). Decision.Allowed keeps the last
	// answer: reads follow it (served from the mirror with a Warning when it
	// allowed, 403 when it denied, 503 when there was none); writes fail
	// with 503.
	Unknown State = "Unknown"
)

// States lists every State, for reports that enumerate them (a metric with
// one series per state).
var States = []State{Pending, Allowed, Denied, Unknown}

// Decision is a snapshot of one target's check.
type Decision struct {
	// Target is the target's ID, "<project>/<name>" (as mirror.TargetID).
	Target string `json:"target"`
	// Name is the target's name: the VirtualClusterInstance checked.
	Name string `json:"name"`
	// Project is the target's project: the VirtualClusterInstance checked
	// is in the namespace p-<Project>.
	Project string `json:"project"`
	// Identity is the client identity checked,
	// loft:vcluster:p-<project>:<name>.
	Identity string `json:"identity"`
	// State is the check's state.
	State State `json:"state"`
	// Allowed is whether the management cluster's last answer allowed the
	// client to use the target: true when Allowed, false when Denied, the
	// last answer's when Unknown (false when there was none), false when
	// Pending.
	Allowed bool `json:"allowed"`
	// Since is when the check entered State.
	Since time.Time `json:"since"`
	// Checked is when the management cluster was last asked (zero before
	// the first check).
	Checked time.Time `json:"checked,omitzero"`
	// Answered is when the management cluster last answered (zero when it
	// never did).
	Answered time.Time `json:"answered,omitzero"`
	// Reason explains State. Allowed and Denied: the SubjectAccessReview's
	// reason (empty when the authorizer gave none, as RBAC does for a
	// denial). Unknown: what went wrong, in words that name no address, so
	// it may be shown to the client's users.
	Reason string `json:"reason,omitempty"`
	// LastError is the error of the failed check while Unknown, in full: it
	// may name the management cluster's address, so it belongs in crproxy's
	// status and log only.
	LastError string `json:"lastError,omitempty"`
}

// MayRead reports whether the target's resources may be mirrored and served:
// Allowed, or Unknown after an answer that allowed (reads then carry
// Warning(d)).
func (d Decision) MayRead() bool {
	return d.State == Allowed || (d.State == Unknown && d.Allowed)
}

// MayWrite reports whether writes may be sent to the target: only when
// Allowed. While Unknown, writes fail with 503 (Unavailable), as they do
// while a target is unreachable.
func (d Decision) MayWrite() bool {
	return d.State == Allowed
}
