package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/reconnect"
)

// discoveryPoll is how often a target's aggregated discovery is read (a 304
// while nothing changed): a CRD created, changed or deleted at the target
// reaches the mirror within about this much.
const discoveryPoll = 500 * time.Millisecond

// acceptAggregatedDiscovery asks for kube-apiserver's aggregated discovery
// document; a target without it answers the legacy APIGroupList.
const acceptAggregatedDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// maxDiscoveryBytes bounds a target's aggregated discovery document.
const maxDiscoveryBytes = 64 << 20

// discoveryPoller tracks a target's API: it reads the target's
// aggregated discovery (GET /apis, one request for every group, answered
// with 304 while nothing changed) every discoveryPoll while a group/version
// subscribes, and wakes the group/versions when the document changes. A
// group/version then reads its own legacy document (which the target
// updates before the aggregated one), so what it serves is exactly the
// target's, storage version hashes included.
//
// The aggregated document carries no deprecation, printer columns or
// schema: those are read where they are used. The schema's hash, though, is
// followed here too (openapi_hashes.go): the target's OpenAPI v3 index
// is read with the document, so a new schema is seen when the target
// publishes it, which may be after its discovery changed.
type discoveryPoller struct {
	target *Target
	// openAPI follows the OpenAPI hashes of the proxied group/versions.
	openAPI openAPIHashes

	mu          sync.Mutex
	subscribers int
	etag        string
	digests     map[schema.GroupVersion]string // of each group/version's entry
	aggregated  bool                           // the target serves the aggregated document
	changed     chan struct{}                  // closed and replaced at each change
	wake        chan struct{}                  // a subscriber arrived
}

func newDiscoveryPoller(t *Target) *discoveryPoller {
	return &discoveryPoller{target: t, changed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// subscribe registers a subscriber to the target's discovery; the returned
// func ends it. The target is polled only while it has subscribers, so a target
// the platform does not allow now is not asked.
func (p *discoveryPoller) subscribe() (unsubscribe func()) {
	p.mu.Lock()
	p.subscribers++
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return func() {
		p.mu.Lock()
		p.subscribers--
		p.mu.Unlock()
	}
}

// subscribed reports whether a group/version tracks the target now (the
// platform allows it).
func (p *discoveryPoller) subscribed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subscribers > 0
}

// state returns the digest of gv's entry in the target's last document (""
// when the target does not list it, or serves no aggregated document) and
// a channel closed at the next change. Without an aggregated document every
// poll is a change: the subscribers read their legacy documents each time.
func (p *discoveryPoller) state(gv schema.GroupVersion) (digest string, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.digests[gv], p.changed
}

// run polls the target until ctx ends, while it has subscribers and is
// not known to be unreachable: the target's tracker probes it then, and
// the polls resume once it answers. A failure to connect is reported to
// the tracker; successes are not (a poll of discovery says nothing of
// whether the mirror's identity is refused).
func (p *discoveryPoller) run(ctx context.Context, log *zap.Logger) {
	tick := time.NewTicker(discoveryPoll)
	defer tick.Stop()
	failing := ""
	for ctx.Err() == nil {
		if p.subscribed() && p.target.Connection.Status().State != reconnect.Unreachable {
			err := p.poll(ctx)
			if err == nil && p.openAPI.due(time.Now()) {
				changed, oerr := p.openAPI.poll(ctx, p.target)
				switch {
				case oerr != nil && ctx.Err() == nil:
					log.Debug("reading the target's OpenAPI index failed", zap.String("target", p.target.ID), zap.Error(oerr))
				case len(changed) > 0:
					log.Debug("the target's OpenAPI changed", zap.String("target", p.target.ID), zap.Stringers("groupVersions", changed))
				}
			}
			if reconnect.Classify(err) == reconnect.Unreachable {
				p.target.Connection.Observe(err)
			}
			// Logged once per kind of failure, not at every poll.
			if err != nil && err.Error() != failing && ctx.Err() == nil {
				log.Info("reading the target's discovery failed; polling on", zap.String("target", p.target.ID), zap.Error(err))
			}
			failing = ""
			if err != nil {
				failing = err.Error()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-p.wake:
		}
	}
}

// poll reads the target's aggregated discovery once.
func (p *discoveryPoller) poll(ctx context.Context) error {
	u := *p.target.Host
	u.Path = strings.TrimSuffix(u.Path, "/") + "/apis"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", acceptAggregatedDiscovery+",application/json")
	p.mu.Lock()
	if p.etag != "" {
		req.Header.Set("If-None-Match", p.etag)
	}
	p.mu.Unlock()
	resp, err := p.target.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes))
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil
	case resp.StatusCode != http.StatusOK:
		return apierrors.NewGenericServerResponse(resp.StatusCode, http.MethodGet, schema.GroupResource{}, "", strings.TrimSpace(string(body)), 0, false)
	case !isAggregatedDiscovery(resp.Header.Get("Content-Type")):
		p.publish("", nil, false)
		return nil
	}
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("decoding the target's aggregated discovery: %w", err)
	}
	digests := map[schema.GroupVersion]string{}
	for _, g := range list.Items {
		for _, v := range g.Versions {
			entry, _ := json.Marshal(v)
			sum := sha256.Sum256(entry)
			digests[schema.GroupVersion{Group: g.Name, Version: v.Version}] = hex.EncodeToString(sum[:8])
		}
	}
	p.publish(resp.Header.Get("ETag"), digests, true)
	return nil
}

// publish records a new document and wakes the subscribers when a
// group/version's entry changed (always, without an aggregated document).
func (p *discoveryPoller) publish(etag string, digests map[schema.GroupVersion]string, aggregated bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.etag = etag
	same := aggregated && p.aggregated && len(digests) == len(p.digests)
	for gv, fp := range digests {
		same = same && p.digests[gv] == fp
	}
	p.digests, p.aggregated = digests, aggregated
	if !same {
		close(p.changed)
		p.changed = make(chan struct{})
		// The target publishes the OpenAPI of a changed CRD shortly
		// after its discovery: follow its index closely for a while.
		p.openAPI.follow(time.Now())
	}
}

// isAggregatedDiscovery reports whether contentType is the aggregated
// discovery document's.
func isAggregatedDiscovery(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json" &&
		params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList"
}
