package bench

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/pkg/config"
)

// replayChunk is how much of a body the replay hands the HTTP/2 server at
// a time: what crproxy's list writer buffers (pkg/server writeList).
const replayChunk = 64 << 10

// replay is the floor of answering a read from memory: a server that
// answers each GET with the body the target answered the same path and
// query with (resourceVersion and resourceVersionMatch aside), fetched
// uncompressed on first use and kept, and written in the chunks crproxy
// writes a list in. Before a consistent read (resourceVersion "" or
// unset) it lists the metadata of the bench client's objects the read
// selects at the target (a consistent list with the owner selector and
// the read's, protobuf PartialObjectMetadata, as crproxy asks for the
// state of a read's scope) and
// answers once the target has: the one request to the target that an
// exact consistent read from memory needs (docs/design/read-path.md),
// without waiting for any watch. It authenticates and authorizes nobody,
// reads no mirror and encodes nothing: what it costs is sending the
// bytes, TLS and HTTP/2, from a process of its own, and for a consistent
// read that one list. Crproxy answers a list with the same bytes (the
// objects' JSON as the target serves it), so no server in its place can
// answer a list faster on the same machine.
//
// It serves anyone the target's admin may read: for benchmarks on this
// machine only.
type replay struct {
	server *httptest.Server
	target *http.Client
	base   *url.URL
	state  metadata.ResourceInterface

	mu     sync.Mutex // held while a body is fetched: B1 reads one at a time
	bodies map[string][]byte
}

// replaySelector is the selection whose state a consistent read asks
// for: the bench client's objects.
var replaySelector = labels.SelectorFromSet(config.Client{Name: "client"}.OwnerLabels()).String()

// newReplay starts a replay on a free loopback port of the apiserver that
// target (an admin's config) reaches.
func newReplay(_ context.Context, target *rest.Config) (*replay, error) {
	// No client-side rate limit: client-go's default (5/s) would hold
	// back the lists of reads faster than 200 ms.
	target = rest.CopyConfig(target)
	target.QPS, target.Burst = -1, 0
	hc, err := rest.HTTPClientFor(target)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	base, err := url.Parse(target.Host)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	mc, err := metadata.NewForConfigAndClient(target, hc)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	p := &replay{target: hc, base: base, bodies: map[string][]byte{}, state: mc.Resource(crproxytest.MyResources)}
	p.server = httptest.NewUnstartedServer(p)
	p.server.EnableHTTP2 = true
	p.server.StartTLS()
	return p, nil
}

// address is how to reach the replay.
func (p *replay) address() serverAddress {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.server.Certificate().Raw})
	return serverAddress{URL: p.server.URL, CA: ca}
}

// Close stops the replay.
func (p *replay) Close() { p.server.Close() }

// ServeHTTP answers a GET with the kept body of its read.
func (p *replay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "the replay answers GETs only", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Query().Get("resourceVersion") == "" {
		if err := p.listState(r.Context(), r.URL.Query().Get("labelSelector")); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	body, err := p.body(r.Context(), replayKey(r.URL))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	for len(body) > 0 {
		n := min(replayChunk, len(body))
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		body = body[n:]
	}
}

// listState asks the target for the state of the read's scope (the
// bench client's objects the read's labelSelector selects), as crproxy
// does before a consistent read.
func (p *replay) listState(ctx context.Context, labelSelector string) error {
	selector := replaySelector
	if labelSelector != "" {
		selector += "," + labelSelector
	}
	_, err := p.state.List(ctx, metav1.ListOptions{LabelSelector: selector})
	return err
}

// replayKey is what tells reads apart for the replay: the path and the
// query without the resourceVersion parameters, sorted (url.Values.Encode).
func replayKey(u *url.URL) string {
	q := u.Query()
	q.Del("resourceVersion")
	q.Del("resourceVersionMatch")
	return u.EscapedPath() + "?" + q.Encode()
}

// body returns the kept body of key's read, reading it at the target
// first if it is not kept yet.
func (p *replay) body(ctx context.Context, key string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b, ok := p.bodies[key]; ok {
		return b, nil
	}
	// Uncompressed, as crproxy answers.
	b, err := getBody(ctx, p.target, strings.TrimSuffix(p.base.String(), "/")+key, http.Header{"Accept-Encoding": {"identity"}})
	if err != nil {
		return nil, err
	}
	p.bodies[key] = b
	return b, nil
}
