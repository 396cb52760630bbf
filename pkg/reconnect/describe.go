package reconnect

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

// Describe says what went wrong talking to peer (a phrase such as "the
// target") in words that name no address: crproxy's callers read it in
// errors and warnings, and where a cluster lives (an IP, a platform's
// internal URL) is not theirs to learn. The full error belongs in
// crproxy's status and log.
func Describe(err error, peer string) string {
	var status apierrors.APIStatus
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	var timeout interface{ Timeout() bool }
	switch {
	case err == nil:
		return "no error"
	case errors.As(err, &status) && status.Status().Code != 0:
		s := status.Status()
		return fmt.Sprintf("%s answered %d %s", peer, s.Code, s.Reason)
	case errors.Is(err, context.Canceled):
		return "the request was canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return peer + " did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection to " + peer + " was refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection to " + peer + " was reset"
	case errors.As(err, &dns):
		return peer + "'s name did not resolve"
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify), errors.As(err, &record):
		return "the TLS handshake with " + peer + " failed"
	default:
		return "the connection to " + peer + " failed"
	}
}
