package mirror

import (
	"errors"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// DescribeFailure says what went wrong talking to a target in words that
// name no address (reconnect.Describe): messages name a target by its
// configured name (Target.ID), never by where it lives.
func DescribeFailure(err error) string {
	var broke *connectionBrokeError
	if errors.As(err, &broke) {
		return broke.Error()
	}
	return reconnect.Describe(err, "the target")
}
