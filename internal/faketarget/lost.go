package faketarget

import (
	"net"
	"testing"
)

// Refused returns an address nothing listens at: a request to it fails to
// dial, so it never reached a target.
func Refused(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// HangUp returns the address of a server that reads each request and
// closes the connection without an answer: a target that may have acted
// on a write whose answer was lost. It stops when the test ends.
func HangUp(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_ = c.Close()
		}
	}()
	return l.Addr().String()
}
