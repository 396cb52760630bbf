package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/reconnect"
	"github.com/crproxy/crproxy/pkg/store"
)

// Options configures a Mirror.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// Store holds the caches.
	Store *store.Store
	// DataDir keeps the targets' discovery documents, so discovery answers
	// while a target is down.
	DataDir string
	// TargetConfigs, keyed by target ID, replace loading the targets'
	// kubeconfig files.
	TargetConfigs map[string]*rest.Config
	// Reconnect configures each target's connection tracking (backoff,
	// probe period); its Probe and Logger are set by the mirror.
	Reconnect reconnect.Options
	// Gate, when set, decides whether each target may be mirrored now
	// (the platform's permission, pkg/platform).
	Gate Gate
	// Logger logs; zap.NewNop when nil.
	Logger *zap.Logger
}

// Gate decides whether the client may use a target now. The mirror asks
// it before it mirrors a target and every gatePoll after: a target that
// stops being allowed stops being mirrored, and its mirrored objects are
// forgotten when the permission was revoked (not merely unknown).
type Gate interface {
	// Mirrors reports whether target may be mirrored now.
	Mirrors(targetID string) bool
	// Revoked reports whether the permission to use target was denied.
	Revoked(targetID string) bool
	// Recheck asks for a fresh decision (the target refused the
	// identity); it must not block.
	Recheck(targetID string)
}

// gatePoll is how often the mirror asks its Gate again.
const gatePoll = 500 * time.Millisecond

// Mirror runs the reflectors of every proxied resource.
type Mirror struct {
	opts          Options
	log           *zap.Logger
	targets       map[string]*Target
	groupVersions []*GroupVersion

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced when a group/version's resources change
}

// New builds the mirror's targets and group/versions; Run starts them.
func New(opts Options) (*Mirror, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	m := &Mirror{opts: opts, log: opts.Logger, targets: map[string]*Target{}, changed: make(chan struct{})}
	client := opts.Config.Client
	for _, gvp := range opts.Config.GroupVersions() {
		id := TargetID(gvp.Target)
		t, ok := m.targets[id]
		if !ok {
			var err error
			conn := opts.Reconnect
			conn.Logger = opts.Logger
			if t, err = NewTarget(gvp.Target, client.Identity(), opts.TargetConfigs[id], conn); err != nil {
				return nil, err
			}
			m.targets[id] = t
		}
		selector := labels.Everything()
		if gvp.Access == config.AccessOwned {
			selector = labels.SelectorFromSet(client.OwnerLabels())
		}
		gv := &GroupVersion{Proxy: gvp, Target: t, selector: selector, selection: selection(t, selector), mirror: m, resources: map[string]*Resource{}}
		if err := gv.loadDiscovery(); err != nil {
			m.log.Warn("ignoring unreadable persisted discovery", zap.String("groupVersion", gvp.GroupVersion.String()), zap.Error(err))
		}
		m.groupVersions = append(m.groupVersions, gv)
		t.discoveryPoller.openAPI.add(gvp.GroupVersion)
	}
	for _, t := range m.targets {
		t.crds.onChange = func() {
			// A CRD's spec changed: its schema is published shortly.
			t.discoveryPoller.openAPI.follow(time.Now())
			m.notifyDiscoveryChanged()
		}
		t.discoveryPoller.openAPI.onChange = m.notifyDiscoveryChanged
	}
	m.forgetOtherSelections()
	return m, nil
}

// selection fingerprints what a group/version's caches hold (see
// store.Key.Selection): the target as configured and reached, the
// identity crproxy reads it as, and the selector.
func selection(t *Target, selector labels.Selector) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{t.ID, t.Host.String(), t.Identity, selector.String()}, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// forgetOtherSelections removes the persisted caches that no configured
// group/version reads: resources no longer proxied, and caches filled
// under another selection (access mode, client identity, target address),
// which must not be served under this one.
func (m *Mirror) forgetOtherSelections() {
	if m.opts.Store == nil {
		return
	}
	for _, k := range m.opts.Store.Caches() {
		gv := m.GroupVersion(k.Group, k.Version)
		if gv != nil && gv.Target.ID == k.Target && gv.selection == k.Selection {
			continue
		}
		m.log.Info("forgetting mirrored objects that this configuration does not read", zap.String("cache", k.String()))
		m.opts.Store.Remove(k)
	}
}

// GroupVersions returns the proxied group/versions, sorted.
func (m *Mirror) GroupVersions() []*GroupVersion { return m.groupVersions }

// GroupVersion returns the proxied group/version, or nil.
func (m *Mirror) GroupVersion(group, version string) *GroupVersion {
	for _, gv := range m.groupVersions {
		if gv.Proxy.GroupVersion.Group == group && gv.Proxy.GroupVersion.Version == version {
			return gv
		}
	}
	return nil
}

// DiscoveryChanged returns a channel closed the next time the resources of
// a group/version, or their descriptions, or its OpenAPI, change (the
// target's CRDs changed): the client's aggregator should read discovery
// and OpenAPI again.
func (m *Mirror) DiscoveryChanged() <-chan struct{} {
	m.changedMu.Lock()
	defer m.changedMu.Unlock()
	return m.changed
}

func (m *Mirror) notifyDiscoveryChanged() {
	m.changedMu.Lock()
	defer m.changedMu.Unlock()
	close(m.changed)
	m.changed = make(chan struct{})
}

// DiscoveryFingerprint identifies what crproxy serves as the discovery of
// the group/version now ("" if it is not proxied): equal on every replica
// that discovered the same.
func (m *Mirror) DiscoveryFingerprint(gv schema.GroupVersion) string {
	g := m.GroupVersion(gv.Group, gv.Version)
	if g == nil {
		return ""
	}
	h := sha256.New()
	for _, r := range g.Resources() {
		s := r.served.Load()
		// The CRD's generation, where crproxy watches the CRDs, covers
		// what discovery does not show: schema, printer columns,
		// deprecation.
		data, _ := json.Marshal([]any{s.api, s.subresources, g.Target.crds.generation(r.GVR.GroupResource())})
		h.Write(data)
	}
	// The hash of its OpenAPI document in the target's index covers the
	// schema wherever crproxy does not watch CRDs, and tells when the
	// target has published a new CRD's schema, which may be a moment after
	// its discovery listed the CRD.
	h.Write([]byte(g.Target.discoveryPoller.openAPI.hash(gv)))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Unserved reports whether the target is known to serve none of the
// group/version's proxied resources now: its discovery, as last read (or
// persisted), lists none (all of its CRDs there were deleted, or none was
// created yet). A kube-apiserver lists no group/version that none of its
// CRDs serves; the registration withdraws such a group/version's
// APIService, so the client's discovery does not list it either. False
// while the target's discovery of it was never read, and for a
// group/version not proxied.
func (m *Mirror) Unserved(gv schema.GroupVersion) bool {
	g := m.GroupVersion(gv.Group, gv.Version)
	return g != nil && g.Unserved()
}

// Targets returns the targets by ID.
func (m *Mirror) Targets() map[string]*Target { return m.targets }

// Run discovers each group/version's resources at its target and mirrors
// them until ctx ends. A target that is down is retried; what was
// persisted keeps being served meanwhile.
func (m *Mirror) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range m.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Connection.Run(ctx)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.discoveryPoller.run(ctx, m.log)
		}()
		groups := map[string]bool{}
		for _, gv := range m.groupVersions {
			if gv.Target == t {
				groups[gv.Proxy.GroupVersion.Group] = true
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.watchCRDs(ctx, groups, m.log)
		}()
	}
	for _, gv := range m.groupVersions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.opts.Gate == nil {
				gv.run(ctx)
				return
			}
			gv.runGated(ctx, m.opts.Gate)
		}()
	}
	wg.Wait()
}

// runGated mirrors gv while gate allows its target: it waits until the
// target is allowed, mirrors it until it no longer is, and then, when the
// permission was revoked, forgets what it mirrored. A target that refuses
// the identity has the gate check again.
func (gv *GroupVersion) runGated(ctx context.Context, gate Gate) {
	id := gv.Target.ID
	tick := time.NewTicker(gatePoll)
	defer tick.Stop()
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			if gv.Target.Connection.Status().State == reconnect.Forbidden {
				gate.Recheck(id)
			}
			return true
		}
	}
	for ctx.Err() == nil {
		if !gate.Mirrors(id) {
			if gate.Revoked(id) {
				gv.forget()
			}
			if !wait() {
				return
			}
			continue
		}
		running, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			gv.run(running)
		}()
		for gate.Mirrors(id) && wait() {
		}
		stop()
		<-done
		gv.stopped()
		gv.mirror.log.Info("the platform's permission to use the target ended; not mirroring it", zap.String("target", id), zap.String("groupVersion", gv.Proxy.GroupVersion.String()))
	}
}

// stopped notes that gv's reflectors have ended, so the next run starts
// them again.
func (gv *GroupVersion) stopped() {
	gv.mu.Lock()
	gv.running = nil
	gv.mu.Unlock()
}

// forget empties gv's caches (the permission to read them was revoked):
// watchers end with 410, reads answer from nothing, and the file forgets
// them at its next flush.
func (gv *GroupVersion) forget() {
	for _, r := range gv.Resources() {
		if r.Cache.Synced() || r.Cache.ResourceVersion() != 0 {
			if err := r.Cache.Reset(""); err != nil {
				gv.mirror.log.Warn("could not forget a mirrored resource", zap.String("resource", r.GVR.String()), zap.Error(err))
			}
		}
	}
}

// GroupVersion is one proxied group/version: one target, one access mode,
// and the resources discovered for it.
type GroupVersion struct {
	// Proxy is the configuration of the group/version.
	Proxy config.GroupVersionProxy
	// Target is where its resources are stored.
	Target *Target

	selector labels.Selector
	// selection is the Selection of its caches' keys.
	selection string
	mirror    *Mirror

	mu        sync.RWMutex
	resources map[string]*Resource          // by plural name
	running   map[string]context.CancelFunc // stops each resource's reflector
	missing   string                        // configured resources the target does not serve, as last logged
	// discovered is set once a discovery document of gv was applied, read
	// from the target or persisted: until then, having no resources says
	// nothing of what the target serves.
	discovered bool
	// savedDigest is the SHA-256 of the discovery document last persisted.
	savedDigest string
}

// Resources returns the group/version's resources, sorted by name.
func (gv *GroupVersion) Resources() []*Resource {
	gv.mu.RLock()
	defer gv.mu.RUnlock()
	out := make([]*Resource, 0, len(gv.resources))
	for _, r := range gv.resources {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GVR.Resource < out[j].GVR.Resource })
	return out
}

// Unserved reports whether the target is known to serve none of gv's
// proxied resources: the discovery document last read from it (or
// persisted) lists none. False while no document was ever applied.
func (gv *GroupVersion) Unserved() bool {
	gv.mu.RLock()
	defer gv.mu.RUnlock()
	return gv.discovered && len(gv.resources) == 0
}

// Resource returns the resource named by its plural name, or nil.
func (gv *GroupVersion) Resource(name string) *Resource {
	gv.mu.RLock()
	defer gv.mu.RUnlock()
	return gv.resources[name]
}

// run tracks the target's discovery of gv and mirrors what it serves
// until ctx ends: a resource the target starts serving is mirrored, one
// whose CRD changed is described anew, and one it stops serving is
// dropped. A target that does not answer is retried; what was discovered
// before (persisted) keeps being mirrored and served meanwhile.
func (gv *GroupVersion) run(ctx context.Context) {
	log := gv.mirror.log.With(zap.String("target", gv.Target.ID), zap.String("groupVersion", gv.Proxy.GroupVersion.String()))
	defer gv.Target.discoveryPoller.subscribe()()
	backoff := gv.Target.Connection.NewBackoff()
	// Mirror what was discovered before (persisted) at once: it resumes
	// the moment the target answers.
	gv.startReflectors(ctx)
	applied, first := "", true
	for ctx.Err() == nil {
		digest, changed := gv.Target.discoveryPoller.state(gv.Proxy.GroupVersion)
		// An empty digest (not listed, or no aggregated document) says
		// nothing about the legacy document: read it at every change.
		if first || digest != applied || digest == "" {
			if err := gv.refresh(ctx, log); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("reading the target's discovery failed; serving what is persisted", zap.Error(err))
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff.NextBackOff()):
				}
				continue
			}
			backoff.Reset()
			applied, first = digest, false
			gv.startReflectors(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(rediscoverInterval):
			first = true
		}
	}
}

// rediscoverInterval is how often a group/version reads its legacy
// discovery document even when the poller saw no change: behind a load
// balancer, the read the poller's wake-up caused may have reached an
// apiserver that had not caught up yet.
const rediscoverInterval = time.Minute

// refresh reads the target's discovery of gv and applies it. A resource
// leaves only when the target is ready (its /readyz waits for the CRDs'
// discovery after a start) and a second read, after the readiness check,
// still does not list it (behind a load balancer the first may have
// reached an apiserver that is starting). Until then the drops wait (the
// error says why) while additions and changes apply.
func (gv *GroupVersion) refresh(ctx context.Context, log *zap.Logger) error {
	list, err := gv.readDiscovery()
	if err != nil {
		return err
	}
	plan := gv.plan(list)
	var deferred error
	if len(plan.removed) > 0 {
		// A 403 is an answer: the target is up (as the tracker's probe
		// counts it).
		if err := gv.Target.probe(ctx); err != nil && !apierrors.IsForbidden(err) {
			deferred = fmt.Errorf("not dropping %s before the target is ready: %w", strings.Join(resourceNames(plan.removed), ", "), err)
			plan = plan.withoutDrops()
		} else {
			if list, err = gv.readDiscovery(); err != nil {
				return err
			}
			plan = gv.plan(list)
		}
	}
	gv.apply(plan)
	// The first document also tells whether gv is unserved
	// (Mirror.Unserved), which the registration follows.
	if first := gv.markDiscovered(); first || len(plan.added)+len(plan.redescribed)+len(plan.removed) > 0 {
		gv.mirror.notifyDiscoveryChanged()
	}
	for _, r := range plan.removed {
		log.Info("the target no longer serves the resource; dropped its mirror", zap.String("resource", r.GVR.Resource))
	}
	for _, r := range plan.added {
		log.Info("the target serves the resource; mirroring it", zap.String("resource", r.api.Name), zap.String("kind", r.api.Kind))
	}
	if missing := strings.Join(plan.missing, ", "); missing != gv.missing {
		gv.missing = missing
		if missing != "" {
			log.Warn("the target does not serve configured resources (yet): is their CRD installed there?", zap.String("resources", missing))
		}
	}
	if deferred != nil {
		// The document persisted stays the one served.
		return deferred
	}
	if err := gv.saveDiscovery(list); err != nil {
		log.Warn("could not persist discovery", zap.Error(err))
	}
	return nil
}

// readDiscovery reads the target's legacy discovery document of gv; a
// group/version the target does not serve is an empty document.
func (gv *GroupVersion) readDiscovery() (*metav1.APIResourceList, error) {
	list, err := gv.Target.discovery.ServerResourcesForGroupVersion(gv.Proxy.GroupVersion.String())
	if reconnect.Classify(err) != "" {
		gv.Target.Connection.Observe(err)
	}
	switch {
	case apierrors.IsNotFound(err):
		return &metav1.APIResourceList{GroupVersion: gv.Proxy.GroupVersion.String()}, nil
	case err != nil:
		return nil, err
	}
	return list, nil
}

// discoveryPlan is how a discovery document changes gv's resources.
type discoveryPlan struct {
	added       []*servedAPI          // resources to mirror
	redescribed map[string]*servedAPI // resources described anew, by name
	removed     []*Resource           // resources to drop (gone, or of another kind or scope now)
	missing     []string              // configured resources the target does not serve
}

// withoutDrops is p without its drops, nor the additions that replace a
// dropped resource (another kind or scope under the same name).
func (p discoveryPlan) withoutDrops() discoveryPlan {
	replaced := map[string]bool{}
	for _, r := range p.removed {
		replaced[r.GVR.Resource] = true
	}
	var added []*servedAPI
	for _, s := range p.added {
		if !replaced[s.api.Name] {
			added = append(added, s)
		}
	}
	p.added, p.removed = added, nil
	return p
}

// plan compares the target's discovery document with gv's resources: the
// configured ones (all of them for a wildcard). A resource whose kind or
// scope changed (its CRD was deleted and created anew) is dropped and
// mirrored again from nothing.
func (gv *GroupVersion) plan(list *metav1.APIResourceList) discoveryPlan {
	wanted := map[string]bool{}
	for _, name := range gv.Proxy.Resources {
		wanted[name] = true
	}
	p := discoveryPlan{redescribed: map[string]*servedAPI{}}
	served := map[string]*servedAPI{}
	for _, api := range list.APIResources {
		if strings.Contains(api.Name, "/") || !(gv.Proxy.Wildcard || wanted[api.Name]) {
			continue
		}
		served[api.Name] = newServedAPI(api, list.APIResources)
	}
	for _, name := range gv.Proxy.Resources {
		if served[name] == nil {
			p.missing = append(p.missing, name)
		}
	}
	gv.mu.RLock()
	defer gv.mu.RUnlock()
	for name, r := range gv.resources {
		s, ok := served[name]
		old := r.served.Load()
		switch {
		case !ok || s.api.Kind != old.api.Kind || s.api.Namespaced != old.api.Namespaced:
			p.removed = append(p.removed, r)
		case !reflect.DeepEqual(s, old):
			p.redescribed[name] = s
		}
	}
	for name, s := range served {
		if r, ok := gv.resources[name]; !ok || slices.Contains(p.removed, r) {
			p.added = append(p.added, s)
		}
	}
	sort.Slice(p.added, func(i, j int) bool { return p.added[i].api.Name < p.added[j].api.Name })
	sort.Strings(p.missing)
	return p
}

// apply carries out p: dropped resources stop being mirrored and their
// caches leave the store (their watchers end); changed ones are described
// anew; added ones get a cache (startReflectors starts them).
func (gv *GroupVersion) apply(p discoveryPlan) {
	gv.mu.Lock()
	defer gv.mu.Unlock()
	for _, r := range p.removed {
		name := r.GVR.Resource
		if gv.resources[name] != r {
			continue
		}
		delete(gv.resources, name)
		gv.Target.ownerKinds.remove(gv.groupKind(r.API().Kind))
		if stop := gv.running[name]; stop != nil {
			stop()
			delete(gv.running, name)
		}
		if gv.mirror.opts.Store != nil {
			gv.mirror.opts.Store.Remove(r.Cache.Key())
		}
	}
	for name, s := range p.redescribed {
		if r := gv.resources[name]; r != nil {
			r.served.Store(s)
		}
	}
	for _, s := range p.added {
		c := gv.mirror.opts.Store.Cache(store.Key{
			Target:    gv.Target.ID,
			Group:     gv.Proxy.GroupVersion.Group,
			Version:   gv.Proxy.GroupVersion.Version,
			Resource:  s.api.Name,
			Selection: gv.selection,
		})
		gv.resources[s.api.Name] = newResource(gv.Target, gv.Proxy, s, gv.selector, c)
		gv.Target.ownerKinds.add(gv.groupKind(s.api.Kind))
	}
}

// groupKind is kind in gv's group.
func (gv *GroupVersion) groupKind(kind string) schema.GroupKind {
	return schema.GroupKind{Group: gv.Proxy.GroupVersion.Group, Kind: kind}
}

// markDiscovered notes that a discovery document of gv was applied; it
// reports whether it is the first.
func (gv *GroupVersion) markDiscovered() (first bool) {
	gv.mu.Lock()
	defer gv.mu.Unlock()
	first = !gv.discovered
	gv.discovered = true
	return first
}

func resourceNames(rs []*Resource) []string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.GVR.Resource
	}
	return names
}

// startReflectors starts mirroring each resource not mirrored yet
// (Resource.run). Before each list, and before resuming, the target's
// identity is checked: a rebuilt target (new kube-system UID) is resynced
// from scratch, never merged.
func (gv *GroupVersion) startReflectors(ctx context.Context) {
	gv.mu.Lock()
	defer gv.mu.Unlock()
	if gv.running == nil {
		gv.running = map[string]context.CancelFunc{}
	}
	for name, r := range gv.resources {
		if gv.running[name] != nil {
			continue
		}
		ctx, stop := context.WithCancel(ctx)
		gv.running[name] = stop
		go r.run(ctx, func(ctx context.Context) error { return gv.checkIdentity(ctx, r) }, gv.mirror.log)
	}
}

func (gv *GroupVersion) checkIdentity(ctx context.Context, r *Resource) error {
	uid, err := gv.Target.ClusterUID(ctx)
	if err != nil {
		// Without permission to read kube-system the identity cannot be
		// checked; the list itself will say whether the target answers.
		gv.mirror.log.Debug("cannot read the target's cluster UID", zap.Error(err))
		return nil
	}
	switch old := r.Cache.ClusterUID(); {
	case old == uid:
		return nil
	case old == "":
		return r.Cache.SetClusterUID(uid)
	default:
		gv.mirror.log.Warn("target cluster identity changed; resyncing from scratch",
			zap.String("resource", r.GVR.String()), zap.String("oldUID", old), zap.String("newUID", uid))
		return r.Cache.Reset(uid)
	}
}

func (gv *GroupVersion) discoveryPath() string {
	name := strings.NewReplacer("/", "_").Replace(gv.Target.ID + "_" + gv.Proxy.GroupVersion.Group + "_" + gv.Proxy.GroupVersion.Version)
	return filepath.Join(gv.mirror.opts.DataDir, "discovery", name+".json")
}

func (gv *GroupVersion) saveDiscovery(list *metav1.APIResourceList) error {
	if gv.mirror.opts.DataDir == "" {
		return nil
	}
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	// Written on change only: a target without aggregated discovery is
	// read at every poll.
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) == gv.savedDigest {
		return nil
	}
	path := gv.discoveryPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	gv.savedDigest = hex.EncodeToString(sum[:])
	return nil
}

func (gv *GroupVersion) loadDiscovery() error {
	if gv.mirror.opts.DataDir == "" {
		return nil
	}
	data, err := os.ReadFile(gv.discoveryPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	gv.apply(gv.plan(&list))
	gv.markDiscovered()
	return nil
}
