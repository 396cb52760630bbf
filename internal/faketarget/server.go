package faketarget

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// GVR is the resource the fake target serves; Kind its kind.
var GVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "myresources"}

// Kind is the kind of GVR.
const Kind = "MyResource"

// TargetID is the ID of the fake target.
const TargetID = "default/target"

// Request is one request the fake target received.
type Request struct {
	Method, Path, ContentType string
	Query                     url.Values
	Body                      []byte
}

// String is "METHOD path[/sub]", what tests compare.
func (r Request) String() string { return r.Method + " " + r.Path }

// Server is the fake target. Its methods are safe for concurrent use.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	objects map[string]map[string]any // by namespace/name
	// namespaces holds the namespaces the target has; nil: every
	// namespace exists (AddNamespace makes the set explicit).
	namespaces map[string]bool
	revision   uint64
	uids       int
	requests   []Request
	// after runs once each request is answered (AfterRequest).
	after func(Request)
}

// New starts a fake target, stopped when t ends.
func New(t testing.TB) *Server {
	s := &Server{t: t, objects: map[string]map[string]any{}, revision: 10}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// Add stores an object (JSON, of the resource's kind; apiVersion, kind,
// uid and resourceVersion filled in when absent) and returns it as stored.
func (s *Server) Add(object string) map[string]any {
	s.t.Helper()
	var obj map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(object), &obj); err != nil {
		s.t.Fatalf("faketarget: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	meta := metadata(obj)
	obj["apiVersion"], obj["kind"] = GVR.GroupVersion().String(), Kind
	if meta["uid"] == nil {
		meta["uid"] = s.newUID()
	}
	if meta["resourceVersion"] == nil {
		s.revision++
		meta["resourceVersion"] = fmt.Sprint(s.revision)
	}
	s.objects[key(meta)] = obj
	return copyJSON(obj)
}

// Remove deletes the object namespace/name, as another writer at the
// target would.
func (s *Server) Remove(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, namespace+"/"+name)
	s.revision++
}

// AddNamespace makes the target hold only the namespaces added (and those
// created through it): a namespace it lacks answers 404, and a write into
// it the kube-apiserver's `namespaces "x" not found`.
func (s *Server) AddNamespace(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.namespaces == nil {
		s.namespaces = map[string]bool{}
	}
	s.namespaces[name] = true
}

// HasNamespace reports whether the target holds the namespace.
func (s *Server) HasNamespace(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.namespaces == nil || s.namespaces[name]
}

// Object returns the object the target holds, nil when none.
func (s *Server) Object(namespace, name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.objects[namespace+"/"+name]; ok {
		return copyJSON(o)
	}
	return nil
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Writes returns the requests received so far that are not reads.
func (s *Server) Writes() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

// Target is a mirror.Target that reaches the fake target.
func (s *Server) Target() *mirror.Target {
	host, _ := url.Parse(s.srv.URL)
	return mirror.NewTargetAt(TargetID, host, s.srv.Client())
}

// Resource is the fake target's resource proxied in access mode, with a
// mirror (a bbolt cache) that holds the objects the target holds now in
// its selection (Client's, in owned mode).
func (s *Server) Resource(access config.AccessMode) *mirror.Resource {
	s.t.Helper()
	owned := labels.SelectorFromSet(Client.OwnerLabels())
	s.mu.Lock()
	var objs []*store.Object
	for _, o := range s.objects {
		// Encoded as the target answers a GET (and crproxy's mirror
		// stores a watched object): sorted keys and a final newline.
		var data bytes.Buffer
		_ = json.NewEncoder(&data).Encode(o)
		so, err := store.NewObject(data.Bytes())
		if err != nil {
			s.mu.Unlock()
			s.t.Fatal(err)
		}
		if access == config.AccessOwned && !owned.Matches(labels.Set(so.Labels)) {
			continue
		}
		objs = append(objs, so)
	}
	revision := s.revision
	s.mu.Unlock()
	return mirrored(s.t, s.Target(), access, objs, revision)
}

// AfterRequest makes f run once each request is answered, before the
// next: what another writer does between two of crproxy's requests (f
// may call Add and Remove).
func (s *Server) AfterRequest(f func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after = f
}

// ServeHTTP serves the resource's paths:
// /apis/example.com/v1/namespaces/<ns>/myresources[/<name>[/status|/scale]].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Query: r.URL.Query(), Body: body}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.serve(w, r, body)
	after := s.after
	s.mu.Unlock()
	if after != nil {
		after(req)
	}
}

// serve answers r, with s.mu held.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	if strings.HasPrefix(r.URL.Path, "/api/v1/namespaces") {
		s.serveNamespaces(w, r, body)
		return
	}
	prefix := "/apis/" + GVR.Group + "/" + GVR.Version + "/namespaces/"
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, prefix), "/")
	if !strings.HasPrefix(r.URL.Path, prefix) || len(parts) < 2 || parts[1] != GVR.Resource || len(parts) > 4 {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource", "")
		return
	}
	namespace := parts[0]
	var name, sub string
	if len(parts) > 2 {
		name = parts[2]
	}
	if len(parts) > 3 {
		sub = parts[3]
	}
	a := answer{w: w, name: name}
	if s.namespaces != nil && !s.namespaces[namespace] && r.Method != http.MethodGet {
		writeNamespaceStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("namespaces %q not found", namespace), namespace)
		return
	}
	dryRun := r.URL.Query().Get("dryRun") != ""
	switch {
	case name == "" && r.Method == http.MethodGet:
		s.list(a, namespace, r.URL.Query())
	case name == "" && r.Method == http.MethodPost:
		s.create(a, namespace, body, dryRun)
	case name == "" && r.Method == http.MethodDelete:
		s.deleteCollection(a, namespace, r.URL.Query())
	case r.Method == http.MethodGet:
		s.get(a, namespace, name, sub)
	case r.Method == http.MethodPut:
		s.update(a, namespace, name, sub, body, dryRun)
	case r.Method == http.MethodPatch:
		s.patch(a, namespace, name, sub, r.Header.Get("Content-Type"), body, dryRun)
	case r.Method == http.MethodDelete:
		s.delete(a, namespace, name, body, dryRun)
	default:
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "method not allowed", name)
	}
}

// serveNamespaces serves GET /api/v1/namespaces/<name> and POST
// /api/v1/namespaces, what crproxy asks to ensure a namespace.
func (s *Server) serveNamespaces(w http.ResponseWriter, r *http.Request, body []byte) {
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/v1/namespaces"), "/")
	answerNamespace := func(code int, name string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}, "status": map[string]any{"phase": "Active"}})
	}
	switch {
	case r.Method == http.MethodGet && name != "":
		if s.namespaces != nil && !s.namespaces[name] {
			writeNamespaceStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("namespaces %q not found", name), name)
			return
		}
		answerNamespace(http.StatusOK, name)
	case r.Method == http.MethodPost && name == "":
		// client-go sends a built-in kind as protobuf.
		obj, _, err := kubescheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		ns, ok := obj.(*corev1.Namespace)
		if err != nil || !ok || ns.Name == "" {
			writeNamespaceStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("not a namespace with a name: %v", err), "")
			return
		}
		if s.namespaces == nil || s.namespaces[ns.Name] {
			writeNamespaceStatus(w, http.StatusConflict, metav1.StatusReasonAlreadyExists, fmt.Sprintf("namespaces %q already exists", ns.Name), ns.Name)
			return
		}
		s.namespaces[ns.Name] = true
		answerNamespace(http.StatusCreated, ns.Name)
	default:
		writeNamespaceStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "method not allowed", name)
	}
}

// answer writes the fake target's answers about one object.
type answer struct {
	w    http.ResponseWriter
	name string
}

func (a answer) object(code int, obj any) {
	a.w.Header().Set("Content-Type", "application/json")
	a.w.WriteHeader(code)
	_ = json.NewEncoder(a.w).Encode(obj)
}

func (a answer) notFound() {
	writeStatus(a.w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%s.%s %q not found", GVR.Resource, GVR.Group, a.name), a.name)
}

func (a answer) conflict(message string) {
	writeStatus(a.w, http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("Operation cannot be fulfilled on %s.%s %q: %s", GVR.Resource, GVR.Group, a.name, message), a.name)
}

func (a answer) badRequest(message string) {
	writeStatus(a.w, http.StatusBadRequest, metav1.StatusReasonBadRequest, message, a.name)
}

// writeStatus answers a Status about the object name of GVR.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, message, name string) {
	writeStatusOf(w, code, reason, message, &metav1.StatusDetails{Name: name, Group: GVR.Group, Kind: GVR.Resource})
}

// writeNamespaceStatus answers a Status about the namespace name.
func writeNamespaceStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, message, name string) {
	writeStatusOf(w, code, reason, message, &metav1.StatusDetails{Name: name, Kind: "namespaces"})
}

func writeStatusOf(w http.ResponseWriter, code int, reason metav1.StatusReason, message string, details *metav1.StatusDetails) {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: message,
		Details: details}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

func (s *Server) list(a answer, namespace string, query url.Values) {
	items, ok := s.selected(a, namespace, query)
	if !ok {
		return
	}
	s.answerList(a, items)
}

// selected returns the objects of namespace, by key, that the query's
// labelSelector selects; ok is false when it answered 400.
func (s *Server) selected(a answer, namespace string, query url.Values) (items map[string]any, ok bool) {
	selector, err := labels.Parse(query.Get("labelSelector"))
	if err != nil {
		a.badRequest(err.Error())
		return nil, false
	}
	items = map[string]any{}
	for k, o := range s.objects {
		if meta := metadata(o); meta["namespace"] == namespace && selector.Matches(labels.Set(labelsOf(meta))) {
			items[k] = o
		}
	}
	return items, true
}

// answerList answers a list of items (by key, sent in key order) at the
// current revision.
func (s *Server) answerList(a answer, items map[string]any) {
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]any, 0, len(keys))
	for _, k := range keys {
		list = append(list, items[k])
	}
	a.object(http.StatusOK, map[string]any{"apiVersion": GVR.GroupVersion().String(), "kind": Kind + "List",
		"metadata": map[string]any{"resourceVersion": fmt.Sprint(s.revision)}, "items": list})
}

func (s *Server) get(a answer, namespace, name, sub string) {
	o, ok := s.objects[namespace+"/"+name]
	switch {
	case !ok:
		a.notFound()
	case sub == "scale":
		a.object(http.StatusOK, scaleOf(o))
	default:
		a.object(http.StatusOK, o)
	}
}

func (s *Server) create(a answer, namespace string, body []byte, dryRun bool) {
	obj, ok := decode(a, body)
	if !ok {
		return
	}
	meta := metadata(obj)
	meta["namespace"] = namespace
	a.name, _ = meta["name"].(string)
	if _, exists := s.objects[key(meta)]; exists {
		writeStatus(a.w, http.StatusConflict, metav1.StatusReasonAlreadyExists, fmt.Sprintf("%s.%s %q already exists", GVR.Resource, GVR.Group, a.name), a.name)
		return
	}
	delete(meta, "resourceVersion")
	meta["uid"] = s.newUID()
	s.store(obj, dryRun)
	a.object(http.StatusCreated, obj)
}

func (s *Server) update(a answer, namespace, name, sub string, body []byte, dryRun bool) {
	current, ok := s.objects[namespace+"/"+name]
	if !ok {
		a.notFound()
		return
	}
	obj, ok := decode(a, body)
	if !ok || !s.preconditions(a, current, metadata(obj)) {
		return
	}
	switch sub {
	case "status":
		next := copyJSON(current)
		next["status"] = obj["status"]
		obj = next
	case "scale":
		next := copyJSON(current)
		spec, _ := next["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
			next["spec"] = spec
		}
		scaleSpec, _ := obj["spec"].(map[string]any)
		spec["replicas"] = scaleSpec["replicas"]
		s.store(next, dryRun)
		a.object(http.StatusOK, scaleOf(next))
		return
	default:
		meta := metadata(obj)
		meta["uid"], meta["namespace"] = metadata(current)["uid"], namespace
		if sub == "" {
			obj["status"] = current["status"]
		}
	}
	s.store(obj, dryRun)
	a.object(http.StatusOK, obj)
}

func (s *Server) patch(a answer, namespace, name, sub, contentType string, body []byte, dryRun bool) {
	current, exists := s.objects[namespace+"/"+name]
	if !exists && contentType != "application/apply-patch+yaml" {
		a.notFound()
		return
	}
	base := current
	if !exists {
		base = map[string]any{"apiVersion": GVR.GroupVersion().String(), "kind": Kind, "metadata": map[string]any{"name": name, "namespace": namespace}}
	}
	if sub == "scale" {
		base = scaleOf(current)
	}
	baseJSON, _ := json.Marshal(base)
	var patched []byte
	var err error
	switch contentType {
	case "application/json-patch+json":
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(body); err == nil {
			patched, err = p.Apply(baseJSON)
		}
		if err != nil {
			writeStatus(a.w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error(), name)
			return
		}
	case "application/merge-patch+json", "application/apply-patch+yaml":
		if patched, err = jsonpatch.MergePatch(baseJSON, body); err != nil {
			a.badRequest(err.Error())
			return
		}
	default:
		writeStatus(a.w, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, "unsupported patch type", name)
		return
	}
	obj, ok := decode(a, patched)
	if !ok {
		return
	}
	meta := metadata(obj)
	if !exists {
		// An apply that creates: a resourceVersion is ignored.
		delete(meta, "resourceVersion")
		meta["uid"] = s.newUID()
		s.store(obj, dryRun)
		a.object(http.StatusCreated, obj)
		return
	}
	if !s.preconditions(a, current, meta) {
		return
	}
	switch sub {
	case "scale":
		next := copyJSON(current)
		spec, _ := next["spec"].(map[string]any)
		scaleSpec, _ := obj["spec"].(map[string]any)
		spec["replicas"] = scaleSpec["replicas"]
		s.store(next, dryRun)
		a.object(http.StatusOK, scaleOf(next))
		return
	case "status":
		next := copyJSON(current)
		next["status"] = obj["status"]
		obj = next
	}
	s.store(obj, dryRun)
	a.object(http.StatusOK, obj)
}

func (s *Server) delete(a answer, namespace, name string, body []byte, dryRun bool) {
	current, ok := s.objects[namespace+"/"+name]
	if !ok {
		a.notFound()
		return
	}
	var opts metav1.DeleteOptions
	if len(body) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			a.badRequest(err.Error())
			return
		}
	}
	meta := metadata(current)
	if p := opts.Preconditions; p != nil {
		if p.UID != nil && string(*p.UID) != meta["uid"] {
			a.conflict(fmt.Sprintf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, meta["uid"]))
			return
		}
		if p.ResourceVersion != nil && *p.ResourceVersion != meta["resourceVersion"] {
			a.conflict(fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, meta["resourceVersion"]))
			return
		}
	}
	if dryRun {
		a.object(http.StatusOK, current)
		return
	}
	if finalizers, _ := meta["finalizers"].([]any); len(finalizers) > 0 {
		next := copyJSON(current)
		metadata(next)["deletionTimestamp"] = "2026-01-01T00:00:00Z"
		s.store(next, false)
		a.object(http.StatusOK, next)
		return
	}
	delete(s.objects, namespace+"/"+name)
	s.revision++
	a.object(http.StatusOK, current)
}

func (s *Server) deleteCollection(a answer, namespace string, query url.Values) {
	items, ok := s.selected(a, namespace, query)
	if !ok {
		return
	}
	for k := range items {
		delete(s.objects, k)
		s.revision++
	}
	s.answerList(a, items)
}

// preconditions checks the UID and resourceVersion a write's object
// carries (meta) against current, as the kube-apiserver does, and answers
// the conflict when one fails.
func (s *Server) preconditions(a answer, current map[string]any, meta map[string]any) bool {
	have := metadata(current)
	if uid, _ := meta["uid"].(string); uid != "" && uid != have["uid"] {
		a.conflict(fmt.Sprintf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, have["uid"]))
		return false
	}
	if rv, _ := meta["resourceVersion"].(string); rv != "" && rv != have["resourceVersion"] {
		a.conflict("the object has been modified; please apply your changes to the latest version and try again")
		return false
	}
	return true
}

// store keeps obj at a new resourceVersion (only stamps it for a dry run).
func (s *Server) store(obj map[string]any, dryRun bool) {
	meta := metadata(obj)
	if dryRun {
		meta["resourceVersion"] = fmt.Sprint(s.revision)
		return
	}
	s.revision++
	meta["resourceVersion"] = fmt.Sprint(s.revision)
	s.objects[key(meta)] = obj
}

func (s *Server) newUID() string {
	s.uids++
	return fmt.Sprintf("uid-%d", s.uids)
}

// scaleOf is the autoscaling/v1 Scale of obj (replicas at spec.replicas).
func scaleOf(obj map[string]any) map[string]any {
	meta := metadata(obj)
	spec, _ := obj["spec"].(map[string]any)
	return map[string]any{"apiVersion": "autoscaling/v1", "kind": "Scale",
		"metadata": map[string]any{"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
		"spec":     map[string]any{"replicas": spec["replicas"]}}
}

func decode(a answer, body []byte) (map[string]any, bool) {
	var obj map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &obj); err != nil || obj == nil {
		a.badRequest(fmt.Sprintf("decoding the body: %v", err))
		return nil, false
	}
	return obj, true
}

// metadata returns obj's metadata, created when absent.
func metadata(obj map[string]any) map[string]any {
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	return meta
}

func labelsOf(meta map[string]any) map[string]string {
	out := map[string]string{}
	m, _ := meta["labels"].(map[string]any)
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

func key(meta map[string]any) string {
	return fmt.Sprint(meta["namespace"]) + "/" + fmt.Sprint(meta["name"])
}

func copyJSON(obj map[string]any) map[string]any {
	data, _ := json.Marshal(obj)
	var out map[string]any
	_ = kjson.UnmarshalCaseSensitivePreserveInts(data, &out)
	return out
}
