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

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// discoveryPoller watches a target's API change: it reads the target's
// aggregated discovery (GET /apis, one request for every group, answered
// with 304 while nothing changed) every discoveryPoll while a group/version
// subscribes, and wakes the group/versions when the document changes. A
// group/version then reads its own legacy document (which the target
// updates before the aggregated one), so what it serves is exactly the
// target's, storage version hashes included.
//
// The aggregated document carries no deprecation, printer columns or
// schema: those are read where they are used.
type discoveryPoller struct {
	target *Target

	mu          sync.Mutex
	subscribers int
	etag        string
	fingerprint map[schema.GroupVersion]string // of each group/version's entry
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
func (f *discoveryPoller) subscribe() (unsubscribe func()) {
	f.mu.Lock()
	f.subscribers++
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return func() {
		f.mu.Lock()
		f.subscribers--
		f.mu.Unlock()
	}
}

// subscribed reports whether a group/version follows the target now (the
// platform allows it).
func (f *discoveryPoller) subscribed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subscribers > 0
}

// state returns gv's fingerprint in the target's last document ("" when
// the target does not list it, or serves no aggregated document) and a
// channel closed at the next change. Without an aggregated document every
// poll is a change: the subscribers read their legacy documents each time.
func (f *discoveryPoller) state(gv schema.GroupVersion) (fingerprint string, changed <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fingerprint[gv], f.changed
}

// run polls the target until ctx ends.
func (f *discoveryPoller) run(ctx context.Context) {
	tick := time.NewTicker(discoveryPoll)
	defer tick.Stop()
	for ctx.Err() == nil {
		f.mu.Lock()
		idle := f.subscribers == 0
		f.mu.Unlock()
		if !idle {
			// While the target is down this waits by its backoff, and
			// polls again the moment the target answers.
			_ = f.target.Connection.Retry(ctx, f.poll)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.wake:
		}
	}
}

// poll reads the target's aggregated discovery once.
func (f *discoveryPoller) poll(ctx context.Context) error {
	u := *f.target.Host
	u.Path = strings.TrimSuffix(u.Path, "/") + "/apis"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", acceptAggregatedDiscovery+",application/json")
	f.mu.Lock()
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	f.mu.Unlock()
	resp, err := f.target.HTTP.Do(req)
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
		f.publish("", nil, false)
		return nil
	}
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("decoding the target's aggregated discovery: %w", err)
	}
	fingerprints := map[schema.GroupVersion]string{}
	for _, g := range list.Items {
		for _, v := range g.Versions {
			entry, _ := json.Marshal(v)
			sum := sha256.Sum256(entry)
			fingerprints[schema.GroupVersion{Group: g.Name, Version: v.Version}] = hex.EncodeToString(sum[:8])
		}
	}
	f.publish(resp.Header.Get("ETag"), fingerprints, true)
	return nil
}

// publish records a new document and wakes the subscribers when a
// group/version's entry changed (always, without an aggregated document).
func (f *discoveryPoller) publish(etag string, fingerprints map[schema.GroupVersion]string, aggregated bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.etag = etag
	same := aggregated && f.aggregated && len(fingerprints) == len(f.fingerprint)
	for gv, fp := range fingerprints {
		same = same && f.fingerprint[gv] == fp
	}
	f.fingerprint, f.aggregated = fingerprints, aggregated
	if !same {
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// isAggregatedDiscovery reports whether contentType is the aggregated
// discovery document's.
func isAggregatedDiscovery(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json" &&
		params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList"
}
