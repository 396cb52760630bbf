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
			_, err = target.Dynamic.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}).List(context.Background(), metav1.ListOptions{})
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the list failed after %s; want at once", took)
			}
			if err == nil || reconnect.Classify(err) != reconnect.Unreachable {
				t.Errorf("error %v, classified %q; want unreachable", err, reconnect.Classify(err))
			}
		})
	}
}
