package localcluster

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"

	"k8s.io/client-go/rest"
)

// RequestFault is how a request chosen by RequestProxy.FailNext fails.
type RequestFault int

const (
	// LoseRequest resets the request's HTTP/2 stream without forwarding
	// it: the apiserver never sees it, but the sender cannot tell, since
	// it had sent the request.
	LoseRequest RequestFault = iota
	// LoseAnswer forwards the request, lets the apiserver carry it out and
	// answer, and then resets the stream: the request took effect and its
	// answer is lost.
	LoseAnswer
)

// RequestProxy is a reverse proxy in front of an apiserver that sees each
// HTTP request, where FaultProxy sees only bytes: it terminates TLS with
// its own certificate, forwards every request unchanged (impersonation
// headers included) with the apiserver's admin credentials, HTTP/2 on both
// sides, and fails the requests FailNext chose. With no fault armed it is
// a plain hop: what any proxy in front of the apiserver costs, which the
// benchmarks measure as a floor.
//
// Its callers need no credentials, and get the admin's rights: it is for
// tests on this machine only.
type RequestProxy struct {
	server  *httptest.Server
	forward *httputil.ReverseProxy

	mu     sync.Mutex
	faults []*armedFault
}

// armedFault is one FailNext not used yet.
type armedFault struct {
	match func(*http.Request) bool
	fault RequestFault
	fired chan struct{}
}

// NewRequestProxy starts a RequestProxy on a free loopback port in front
// of the apiserver that backend (an admin's config) reaches.
func NewRequestProxy(backend *rest.Config) (*RequestProxy, error) {
	u, err := url.Parse(backend.Host)
	if err != nil {
		return nil, fmt.Errorf("request proxy: %w", err)
	}
	tr, err := rest.TransportFor(backend)
	if err != nil {
		return nil, fmt.Errorf("request proxy: %w", err)
	}
	// Their errors reach the caller as its answer (a 502, a reset
	// stream); a watch the caller closes is no error worth a line.
	quiet := log.New(io.Discard, "", 0)
	p := &RequestProxy{forward: &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u) },
		Transport: tr,
		ErrorLog:  quiet,
	}}
	p.server = httptest.NewUnstartedServer(p)
	p.server.Config.ErrorLog = quiet
	p.server.EnableHTTP2 = true
	p.server.StartTLS()
	return p, nil
}

// RESTConfig reaches the apiserver through the proxy; it trusts the
// proxy's certificate and carries no credentials.
func (p *RequestProxy) RESTConfig() *rest.Config {
	ca := encodeCert(p.server.Certificate().Raw)
	return &rest.Config{Host: p.server.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

// FailNext makes the next request that match accepts fail with fault. The
// channel it returns is closed just before that request's stream is
// reset; disarm takes the fault back if no request has met it yet.
func (p *RequestProxy) FailNext(match func(*http.Request) bool, fault RequestFault) (fired <-chan struct{}, disarm func()) {
	f := &armedFault{match: match, fault: fault, fired: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, f)
	return f.fired, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.faults = slices.DeleteFunc(p.faults, func(g *armedFault) bool { return g == f })
	}
}

// Close stops the proxy.
func (p *RequestProxy) Close() { p.server.Close() }

// ServeHTTP forwards r, or fails it as an armed fault says.
func (p *RequestProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.take(r)
	if f == nil {
		p.forward.ServeHTTP(w, r)
		return
	}
	defer close(f.fired)
	if f.fault == LoseAnswer {
		p.forward.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Nothing was written to w: the server resets the stream.
	panic(http.ErrAbortHandler)
}

// take removes and returns the first armed fault that matches r.
func (p *RequestProxy) take(r *http.Request) *armedFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, f := range p.faults {
		if f.match(r) {
			p.faults = slices.Delete(p.faults, i, i+1)
			return f
		}
	}
	return nil
}
