package mirror

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// DescribeFailure says what went wrong talking to a target in words that
// name no address: crproxy's callers read it in errors and warnings, and
// where a target lives (an IP, a platform's internal URL) is not theirs to
// learn. Messages name a target by its configured name (Target.ID); the
// full error belongs in crproxy's own log.
func DescribeFailure(err error) string {
	var status apierrors.APIStatus
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	var timeout interface{ Timeout() bool }
	var broke *connectionBrokeError
	switch {
	case err == nil:
		return "no error"
	case errors.As(err, &status):
		s := status.Status()
		return fmt.Sprintf("the target answered %d %s", s.Code, s.Reason)
	case errors.Is(err, context.Canceled):
		return "the request was canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return "the target did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused"
	case errors.As(err, &broke):
		return broke.Error()
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection to the target was reset"
	case errors.As(err, &dns):
		return "the target's name did not resolve"
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify), errors.As(err, &record):
		return "the TLS handshake with the target failed"
	default:
		return "the connection to the target failed"
	}
}
