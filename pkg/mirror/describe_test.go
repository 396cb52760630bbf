package mirror

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// What a caller reads about a failure never holds the target's address.
func TestDescribeFailureNamesNoAddress(t *testing.T) {
	const addr = "10.1.2.3:6443"
	dial := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 6443}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	wrapped := &url.Error{Op: "Get", URL: "https://" + addr + "/kubernetes/project/p/virtualcluster/x/readyz", Err: dial}
	for _, c := range []struct {
		err  error
		want string
	}{
		{wrapped, "the connection to the target was refused"},
		{&url.Error{Op: "Get", URL: "https://" + addr, Err: context.DeadlineExceeded}, "the target did not answer in time"},
		{&url.Error{Op: "Get", URL: "https://" + addr, Err: &net.DNSError{Name: "target.internal", Err: "no such host"}}, "the target's name did not resolve"},
		{&url.Error{Op: "Get", URL: "https://" + addr, Err: x509.UnknownAuthorityError{}}, "the TLS handshake with the target failed"},
		{fmt.Errorf("watch: %w", &connectionBrokeError{how: "was reset"}), "the connection to the target was reset"},
		{apierrors.NewForbidden(schema.GroupResource{Resource: "myresources"}, "x", errors.New("no")), "the target answered 403 Forbidden"},
		{errors.New("Get \"https://" + addr + "\": something new"), "the connection to the target failed"},
	} {
		got := DescribeFailure(c.err)
		if got != c.want || strings.Contains(got, "10.1.2.3") {
			t.Errorf("DescribeFailure(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
