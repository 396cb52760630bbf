package server

import (
	"context"
	"crypto/sha256"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// authorizationEntries bounds the decision cache, as k8s.io/apiserver's
// webhook authorizer bounds its own.
const authorizationEntries = 8192

// decisionCache remembers the client cluster's answers to
// subjectAccessReviewer, allowed ones for allowTTL and the others for
// denyTTL, as k8s.io/apiserver's webhook authorizer would. Its key holds
// the fields of the review, written out plainly and kept as their SHA-256:
// the webhook's cache keys each request by the JSON of its review, and
// marshalling it was an eighth of crproxy's CPU in the profile of B2 (GET
// by name, 64 clients, straight); keeping that JSON let a caller fill the
// memory with made-up names.
//
// Only answers are cached; an error (the client cluster could not be
// asked) is not, so the next request asks again.
type decisionCache struct {
	delegate          authorizer.Authorizer
	cache             *cache.LRUExpireCache
	allowTTL, denyTTL time.Duration
}

// cachedDecision is one remembered answer.
type cachedDecision struct {
	decision authorizer.Decision
	reason   string
}

func newDecisionCache(delegate authorizer.Authorizer, allowTTL, denyTTL time.Duration, clock cache.Clock) *decisionCache {
	return &decisionCache{delegate: delegate, cache: cache.NewLRUExpireCacheWithClock(authorizationEntries, clock), allowTTL: allowTTL, denyTTL: denyTTL}
}

// Authorize implements authorizer.Authorizer.
func (c *decisionCache) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	text, ok := decisionKey(a)
	if !ok {
		return c.delegate.Authorize(ctx, a)
	}
	// Entries are kept by the key's digest: a caller's long names and
	// paths take no room in the cache, which is bounded by its entry
	// count alone (denied requests of made-up paths included).
	key := sha256.Sum256([]byte(text))
	if d, ok := c.cache.Get(key); ok {
		d := d.(cachedDecision)
		return d.decision, d.reason, nil
	}
	decision, reason, err := c.delegate.Authorize(ctx, a)
	if err == nil {
		ttl := c.denyTTL
		if decision == authorizer.DecisionAllow {
			ttl = c.allowTTL
		}
		if ttl > 0 {
			c.cache.Add(key, cachedDecision{decision, reason}, ttl)
		}
	}
	return decision, reason, err
}

// maxDecisionKey is the longest key cached, as the webhook authorizer
// caches only requests of a bounded size: a caller must not fill the
// memory with long names.
const maxDecisionKey = 10000

// decisionKey writes out everything a SubjectAccessReview of a carries: the
// user (name, UID, groups, extra) and the request's attributes, each field
// prefixed by its length so that no two requests share a key. ok is false
// for a key too long to cache.
func decisionKey(a authorizer.Attributes) (key string, ok bool) {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	if u := a.GetUser(); u != nil {
		field("user")
		field(u.GetName())
		field(u.GetUID())
		field(strconv.Itoa(len(u.GetGroups())))
		for _, g := range u.GetGroups() {
			field(g)
		}
		extra := u.GetExtra()
		keys := make([]string, 0, len(extra))
		for k := range extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		field(strconv.Itoa(len(keys)))
		for _, k := range keys {
			field(k)
			field(strconv.Itoa(len(extra[k])))
			for _, v := range extra[k] {
				field(v)
			}
		}
	} else {
		field("nouser")
	}
	if !a.IsResourceRequest() {
		field("path")
		field(a.GetPath())
		field(a.GetVerb())
		return b.String(), b.Len() <= maxDecisionKey
	}
	field("resource")
	for _, s := range []string{a.GetVerb(), a.GetNamespace(), a.GetAPIGroup(), a.GetAPIVersion(), a.GetResource(), a.GetSubresource(), a.GetName()} {
		field(s)
	}
	// Selectors are part of the review (kube-apiserver passes them on since
	// AuthorizeWithSelectors), so part of the key.
	if reqs, err := a.GetFieldSelector(); len(reqs) > 0 || err != nil {
		field("fields")
		field(errorText(err))
		field(strconv.Itoa(len(reqs)))
		for _, r := range reqs {
			field(string(r.Operator))
			field(r.Field)
			field(r.Value)
		}
	}
	if reqs, err := a.GetLabelSelector(); len(reqs) > 0 || err != nil {
		field("labels")
		field(errorText(err))
		field(strconv.Itoa(len(reqs)))
		for _, r := range reqs {
			field(string(r.Operator()))
			field(r.Key())
			values := r.ValuesUnsorted()
			field(strconv.Itoa(len(values)))
			for _, v := range values {
				field(v)
			}
		}
	}
	return b.String(), b.Len() <= maxDecisionKey
}

// errorText is err's message, "" for none.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
