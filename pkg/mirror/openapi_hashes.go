package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// openAPIFollow is how long after a change of the target's discovery its
// OpenAPI v3 index is read at every discovery poll: the target publishes
// a new CRD's schema a moment after the CRD appears in its discovery (its
// OpenAPI controller, then its aggregator, each take their turn).
const openAPIFollow = 30 * time.Second

// openAPIPoll is how often the index is read otherwise: a schema can
// change without discovery changing (a CRD's schema edited), and crproxy
// may not watch CRDs.
const openAPIPoll = 10 * time.Second

// maxOpenAPIIndexBytes bounds a target's OpenAPI v3 index.
const maxOpenAPIIndexBytes = 16 << 20

// openAPIHashes follows the hash of each proxied group/version's OpenAPI v3
// document in the target's index (GET /openapi/v3: a serverRelativeURL
// per group/version whose ?hash= changes with the document). A hash is
// part of the group/version's discovery fingerprint
// (Mirror.DiscoveryFingerprint): when the target publishes a new schema,
// the client's aggregator reads crproxy's OpenAPI again (the APIService's
// annotation changes) and crproxy drops its copies (onChange), instead of
// both keeping the old one for a minute.
type openAPIHashes struct {
	mu sync.Mutex
	// groupVersions are the proxied group/versions of the target.
	groupVersions map[schema.GroupVersion]bool
	hashes        map[schema.GroupVersion]string
	read          time.Time // the last successful read
	followUntil   time.Time // read at every poll until then
	// onChange is called when a proxied group/version's hash changed.
	onChange func()
}

// add makes gv one of the followed group/versions.
func (o *openAPIHashes) add(gv schema.GroupVersion) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.groupVersions == nil {
		o.groupVersions = map[schema.GroupVersion]bool{}
	}
	o.groupVersions[gv] = true
}

// hash returns gv's hash in the target's index as last read ("" if it is
// not listed, or the index was never read).
func (o *openAPIHashes) hash(gv schema.GroupVersion) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hashes[gv]
}

// follow has the index read at every poll for openAPIFollow from now.
func (o *openAPIHashes) follow(now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.followUntil = now.Add(openAPIFollow)
}

// due reports whether the index should be read at a poll at now.
func (o *openAPIHashes) due(now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.groupVersions) > 0 && (now.Before(o.followUntil) || now.Sub(o.read) >= openAPIPoll)
}

// poll reads the target's index once and records the hashes; it returns
// the followed group/versions whose hash changed.
func (o *openAPIHashes) poll(ctx context.Context, t *Target) ([]schema.GroupVersion, error) {
	u := *t.Host
	u.Path = strings.TrimSuffix(u.Path, "/") + "/openapi/v3"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOpenAPIIndexBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apierrors.NewGenericServerResponse(resp.StatusCode, http.MethodGet, schema.GroupResource{}, "", strings.TrimSpace(string(body)), 0, false)
	}
	hashes, err := parseOpenAPIIndex(body)
	if err != nil {
		return nil, err
	}
	return o.record(hashes, time.Now()), nil
}

// record keeps the hashes of the followed group/versions out of those of
// an index read at now, and calls onChange if one changed; it returns
// those that changed.
func (o *openAPIHashes) record(all map[schema.GroupVersion]string, now time.Time) []schema.GroupVersion {
	o.mu.Lock()
	hashes := map[schema.GroupVersion]string{}
	var changed []schema.GroupVersion
	for gv := range o.groupVersions {
		if h, ok := all[gv]; ok {
			hashes[gv] = h
		}
		if hashes[gv] != o.hashes[gv] {
			changed = append(changed, gv)
		}
	}
	o.hashes, o.read = hashes, now
	onChange := o.onChange
	o.mu.Unlock()
	if len(changed) > 0 && onChange != nil {
		onChange()
	}
	return changed
}

// parseOpenAPIIndex returns the hash of each group/version's document in
// an OpenAPI v3 index ({"paths":{"apis/<group>/<version>":
// {"serverRelativeURL":"/openapi/v3/apis/<group>/<version>?hash=<hash>"}}};
// the core group is "api/v1"). A URL without a hash stands for itself.
func parseOpenAPIIndex(data []byte) (map[schema.GroupVersion]string, error) {
	var index struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("decoding the target's OpenAPI v3 index: %w", err)
	}
	hashes := map[schema.GroupVersion]string{}
	for path, entry := range index.Paths {
		var gv schema.GroupVersion
		switch parts := strings.Split(path, "/"); {
		case len(parts) == 3 && parts[0] == "apis":
			gv = schema.GroupVersion{Group: parts[1], Version: parts[2]}
		case len(parts) == 2 && parts[0] == "api":
			gv = schema.GroupVersion{Version: parts[1]}
		default:
			continue
		}
		hash := entry.ServerRelativeURL
		if u, err := url.Parse(entry.ServerRelativeURL); err == nil && u.Query().Get("hash") != "" {
			hash = u.Query().Get("hash")
		}
		hashes[gv] = hash
	}
	return hashes, nil
}
