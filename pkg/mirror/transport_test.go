package mirror

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// TestBrokenConnectionFailsFast: a target that cuts every connection fails
// a GET at once, as unreachable, instead of after client-go's ten retries a
// second apart.
func TestBrokenConnectionFailsFast(t *testing.T) {
	cuts := map[string]func(net.Conn){
		"closed": func(c net.Conn) { _ = c.Close() },
		"reset": func(c net.Conn) {
			_ = c.(*net.TCPConn).SetLinger(0) // close with RST
			_ = c.Close()
		},
	}
	for name, cut := range cuts {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				cut(c)
			}))
			defer srv.Close()
			target, err := NewTarget(config.Target{Project: "p", Name: "t"}, "loft:vcluster:p-p:c", &rest.Config{Host: srv.URL}, reconnect.Options{})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = target.dynamic.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}).List(context.Background(), metav1.ListOptions{})
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the list failed after %s; want at once", took)
			}
			if err == nil || reconnect.Classify(err) != reconnect.Unreachable {
				t.Errorf("error %v, classified %q; want unreachable", err, reconnect.Classify(err))
			}
		})
	}
}

// Any request of a target's client that gets no answer marks the target
// unreachable, whoever sent it; a request its caller canceled does not,
// and neither does an answer of any code.
func TestTargetClientRecordsFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: every dial is refused
	target, err := NewTarget(config.Target{Name: "t", Project: "p"}, "loft:vcluster:p-p:c", &rest.Config{Host: "http://" + addr}, reconnect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target.Connection.MarkSynced()

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = target.kube.CoreV1().Namespaces().Get(canceled, "x", metav1.GetOptions{})
	if st := target.Connection.Status().State; st != reconnect.Connected {
		t.Fatalf("after a canceled request the target is %s, want Connected", st)
	}
	// A namespace check, as the write path makes it.
	_, _ = target.kube.CoreV1().Namespaces().Get(context.Background(), "x", metav1.GetOptions{})
	if st := target.Connection.Status().State; st != reconnect.Unreachable {
		t.Fatalf("after a refused connection the target is %s, want Unreachable", st)
	}
}
