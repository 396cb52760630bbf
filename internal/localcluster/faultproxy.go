package localcluster

import (
	"errors"
	"io"
	"net"
	"sync"
)

// FaultProxy forwards TCP connections to a backend and can cut them, to
// stand for a network partition between crproxy and a target while the
// target itself keeps running (and can be changed by the test).
type FaultProxy struct {
	backend  string
	listener net.Listener

	mu          sync.Mutex
	partitioned bool
	conns       map[net.Conn]struct{}
	closed      bool
}

// NewFaultProxy listens on a free loopback port and forwards to backend
// (host:port).
func NewFaultProxy(backend string) (*FaultProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &FaultProxy{backend: backend, listener: l, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *FaultProxy) Addr() string { return p.listener.Addr().String() }

// Partition cuts every open connection and refuses new ones (they are
// accepted and reset at once) until Heal.
func (p *FaultProxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partitioned = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// Heal lets connections through again.
func (p *FaultProxy) Heal() {
	p.mu.Lock()
	p.partitioned = false
	p.mu.Unlock()
}

// Close stops the proxy and cuts every connection.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Partition()
	_ = p.listener.Close()
}

func (p *FaultProxy) serve() {
	for {
		c, err := p.listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go p.forward(c)
	}
}

// track registers conns to be cut by Partition; false when partitioned.
func (p *FaultProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.partitioned || p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *FaultProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}

func (p *FaultProxy) forward(client net.Conn) {
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	backend, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer backend.Close()
	if !p.track(backend) {
		return
	}
	defer p.untrack(backend)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
}
