package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// vector is one attack: a request, what the attacker must observe, and
// (always) that the target did not change.
type vector struct {
	name        string
	method      string
	path        string // below /apis/example.com/v1/namespaces/arena
	contentType string
	body        string
	// code and reason are the answer the attacker must get (code 0: any);
	// hidden, when set, must not appear in the answer's body.
	code   int
	reason metav1.StatusReason
	hidden string
}

// arena is the attack suite's ground: one target shared by team-a and
// team-b (owned mode), each with its client cluster and its crproxy as a
// process (so its memory is its own), and objects of both teams in the
// namespace arena at the target.
type arena struct {
	target, teamA, teamB *localcluster.APIServer
	proxyB               *crproxytest.Proxy
	// viaClient reaches team-b's resources through its client apiserver,
	// direct straight at its crproxy, both as team-b's admin.
	viaClient, direct *http.Client
	directBase        string
}

func newArena(t *testing.T, ctx context.Context) *arena {
	a := &arena{
		target: clustertest.NewAPIServer(t, "target"),
		teamA:  clustertest.NewAPIServer(t, "team-a"),
		teamB:  clustertest.NewAPIServer(t, "team-b"),
	}
	prepareWriteTarget(t, ctx, a.target)
	startProxy(t, a.teamA, crproxytest.Config("team-a", a.teamA, a.target))
	a.proxyB = crproxytest.StartProxy(t, crproxytest.Options{Client: a.teamB, Config: crproxytest.Config("team-b", a.teamB, a.target), Process: true,
		// The memory tests read its heap after a GC.
		ExtraArgs: []string{"--profiling"}})
	for _, s := range []*localcluster.APIServer{a.teamA, a.teamB} {
		kubectl(t, ctx, s, "create", "namespace", "arena")
	}
	kubectlApply(t, ctx, a.teamA, "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: a-secret\n  namespace: arena\n  labels: {app: shared}\nspec:\n  name: team-a only\n")
	kubectlApply(t, ctx, a.teamB, "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: b-own\n  namespace: arena\n  labels: {app: shared}\nspec:\n  name: team-b's\n")
	var err error
	if a.viaClient, err = rest.HTTPClientFor(a.teamB.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	direct, err := a.proxyB.DirectConfig(localcluster.AdminUser, "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	if a.direct, err = rest.HTTPClientFor(direct); err != nil {
		t.Fatal(err)
	}
	a.directBase = a.proxyB.URL()
	return a
}

// rssMiB is team-b's crproxy's resident memory.
func (a *arena) rssMiB(t *testing.T) int {
	t.Helper()
	st, err := localcluster.ReadProcStatus(a.proxyB.Process().PID())
	if err != nil {
		t.Fatal(err)
	}
	return st.RSSKiB / 1024
}

// targetState is every MyResource and namespace at the target with its
// resourceVersion and labels: what an attack must leave as it is.
func (a *arena) targetState(t *testing.T, ctx context.Context) string {
	t.Helper()
	return kubectl(t, ctx, a.target, "get", "myresources,namespaces", "-A", "-o",
		"jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}@{.metadata.resourceVersion}{.metadata.labels}{\"\\n\"}{end}")
}

// send does one request through the client apiserver or straight.
func (a *arena) send(t *testing.T, ctx context.Context, straight bool, method, path, contentType string, body []byte) answer {
	t.Helper()
	who := attacker{hc: a.viaClient, base: strings.TrimSuffix(a.teamB.URL, "/")}
	if straight {
		who = attacker{hc: a.direct, base: a.directBase}
	}
	if contentType == "" {
		return who.do(t, ctx, method, path, body)
	}
	return who.do(t, ctx, method, path, body, "Content-Type", contentType)
}

// run sends each vector through the client apiserver and straight at
// crproxy, and checks the answer and that the target is as it was.
func (a *arena) run(t *testing.T, ctx context.Context, vectors []vector) {
	t.Helper()
	for _, v := range vectors {
		for _, straight := range []bool{false, true} {
			route := "through the client apiserver"
			if straight {
				route = "straight at crproxy"
			}
			t.Run(v.name+", "+route, func(t *testing.T) {
				before := a.targetState(t, ctx)
				var body []byte
				if v.body != "" {
					body = []byte(v.body)
				}
				got := a.send(t, ctx, straight, v.method, "/apis/example.com/v1/namespaces/arena"+v.path, v.contentType, body)
				if v.code != 0 && got.code != v.code {
					t.Errorf("%d %s; want %d", got.code, truncate(got.body), v.code)
				} else if v.reason != "" {
					if st := got.status(t); st.Reason != v.reason {
						t.Errorf("reason %q (%s), want %q", st.Reason, st.Message, v.reason)
					}
				}
				if v.hidden != "" && bytes.Contains(got.body, []byte(v.hidden)) {
					t.Errorf("the answer shows %q: %s", v.hidden, truncate(got.body))
				}
				if after := a.targetState(t, ctx); after != before {
					t.Errorf("the target changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// Team-b, attacking team-a's objects on the target they share: every
// read selects, names or resumes its way to nothing of team-a's, and every
// write of team-a's object is answered as for a missing object, with the
// target unchanged.
func TestAttackTenantIsolation(t *testing.T) {
	// The flood of refused requests takes minutes under -race.
	ctx := testContextWithin(t, 15*time.Minute)
	a := newArena(t, ctx)
	const collection, victim = "/myresources", "/myresources/a-secret"
	q := url.QueryEscape
	reads := []vector{
		{name: "list by a shared label", method: "GET", path: collection + "?labelSelector=app%3Dshared", code: 200, hidden: "a-secret"},
		{name: "list by team-a's owner label", method: "GET", path: collection + "?labelSelector=" + q("vcluster.com/owner-vcluster=team-a"), code: 200, hidden: "a-secret"},
		{name: "list, set-based owner selector", method: "GET", path: collection + "?labelSelector=" + q("vcluster.com/owner-vcluster in (team-a,team-b)"), code: 200, hidden: "a-secret"},
		{name: "list, negated owner selector", method: "GET", path: collection + "?labelSelector=" + q("vcluster.com/owner-vcluster!=team-b"), code: 200, hidden: "a-secret"},
		{name: "list, owner label absent", method: "GET", path: collection + "?labelSelector=" + q("!vcluster.com/owner-vcluster"), code: 200, hidden: "a-secret"},
		{name: "list by field selector on the name", method: "GET", path: collection + "?fieldSelector=" + q("metadata.name=a-secret"), code: 200, hidden: "a-secret"},
		{name: "get by name", method: "GET", path: victim, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "get by name, resourceVersion 0", method: "GET", path: victim + "?resourceVersion=0", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "list, resourceVersionMatch=Exact at the oldest kept", method: "GET", path: collection + "?resourceVersion=1&resourceVersionMatch=Exact", code: 410, reason: metav1.StatusReasonExpired, hidden: "a-secret"},
		{name: "list resumed by a continue token before team-a's object", method: "GET", path: collection + "?limit=5&continue=" + q(continueAt(rvAt(t, ctx, a.target, "a-secret"), "arena", "a")), hidden: "a-secret"},
		{name: "watch with initial events, stops at once", method: "GET", path: collection + "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1", code: 200, hidden: "a-secret"},
		{name: "watch of team-a's object by name", method: "GET", path: "/myresources?watch=true&timeoutSeconds=1&fieldSelector=" + q("metadata.name=a-secret"), code: 200, hidden: "a-secret"},
	}
	writes := []vector{
		{name: "merge patch", method: "PATCH", path: victim, contentType: "application/merge-patch+json", body: `{"spec":{"name":"hijacked"}}`, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "JSON patch", method: "PATCH", path: victim, contentType: "application/json-patch+json", body: `[{"op":"replace","path":"/spec/name","value":"hijacked"}]`, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "JSON patch of the owner label", method: "PATCH", path: victim, contentType: "application/json-patch+json", body: `[{"op":"replace","path":"/metadata/labels/vcluster.com~1owner-vcluster","value":"team-b"}]`, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "strategic merge patch", method: "PATCH", path: victim, contentType: "application/strategic-merge-patch+json", body: `{"spec":{"name":"hijacked"}}`, code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "server-side apply, forced", method: "PATCH", path: victim + "?fieldManager=attacker&force=true", contentType: "application/apply-patch+yaml", body: "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: a-secret\n  namespace: arena\nspec:\n  name: hijacked\n", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "status merge patch", method: "PATCH", path: victim + "/status", contentType: "application/merge-patch+json", body: `{"status":{"phase":"Hijacked"}}`, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "update", method: "PUT", path: victim, contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"a-secret","namespace":"arena"},"spec":{"name":"hijacked"}}`, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "status update", method: "PUT", path: victim + "/status", contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"a-secret","namespace":"arena"},"status":{"phase":"Hijacked"}}`, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "delete", method: "DELETE", path: victim, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "delete with team-a's UID as precondition", method: "DELETE", path: victim, contentType: "application/json", body: `{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"` + uidAt(t, ctx, a.target, "a-secret") + `"}}`, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "create over team-a's name", method: "POST", path: collection, contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"a-secret"},"spec":{"name":"hijacked"}}`, code: 409, reason: metav1.StatusReasonAlreadyExists},
		{name: "update of one's own object carrying team-a's UID", method: "PUT", path: "/myresources/b-own", contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"b-own","namespace":"arena","uid":"` + uidAt(t, ctx, a.target, "a-secret") + `"},"spec":{"name":"changed"}}`, code: 409, reason: metav1.StatusReasonConflict},
		{name: "update whose body names team-a's object", method: "PUT", path: "/myresources/b-own", contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"a-secret","namespace":"arena"},"spec":{"name":"hijacked"}}`, code: 400, reason: metav1.StatusReasonBadRequest},
	}
	own := "/myresources/b-own"
	deep := strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001)
	copyBomb := `[{"op":"add","path":"/spec/c0","value":"` + strings.Repeat("x", 1000) + `"}`
	for i := 1; i <= 30; i++ {
		copyBomb += fmt.Sprintf(`,{"op":"copy","from":"/spec","path":"/spec/c%d"}`, i)
	}
	copyBomb += "]"
	bodies := []vector{
		{name: "a body over 3 MiB", method: "POST", path: collection, contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"big"},"spec":{"name":"` + strings.Repeat("x", 4<<20) + `"}}`, code: 413, reason: metav1.StatusReasonRequestEntityTooLarge},
		{name: "a body nested 10,001 deep", method: "POST", path: collection, contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"deep"},"spec":` + deep + `}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "a merge patch nested 10,001 deep", method: "PATCH", path: own, contentType: "application/merge-patch+json", body: `{"spec":` + deep + `}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "malformed JSON", method: "POST", path: collection, contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "another kind", method: "POST", path: collection, contentType: "application/json", body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"a":"b"}}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "another namespace in the body", method: "POST", path: collection, contentType: "application/json", body: `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"elsewhere","namespace":"default"},"spec":{"name":"x"}}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "a JSON patch of 10,001 operations", method: "PATCH", path: own, contentType: "application/json-patch+json", body: "[" + strings.TrimSuffix(strings.Repeat(`{"op":"test","path":"/kind","value":"MyResource"},`, 10001), ",") + "]", code: 413, reason: metav1.StatusReasonRequestEntityTooLarge},
		{name: "a JSON patch copy bomb of one's own object", method: "PATCH", path: own, contentType: "application/json-patch+json", body: copyBomb, code: 422, reason: metav1.StatusReasonInvalid},
		{name: "a YAML alias bomb", method: "PATCH", path: own + "?fieldManager=x", contentType: "application/apply-patch+yaml", body: "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", code: 400, reason: metav1.StatusReasonBadRequest},
	}
	memoryBefore := a.rssMiB(t)
	a.run(t, ctx, reads)
	a.run(t, ctx, writes)
	a.run(t, ctx, bodies)
	if grew := a.rssMiB(t) - memoryBefore; grew > 150 {
		t.Errorf("crproxy's resident memory grew by %d MiB over the attacks", grew)
	}

	t.Run("owner labels in one's own writes cannot name another client", func(t *testing.T) {
		before := a.targetState(t, ctx)
		for _, c := range []struct{ contentType, body string }{
			{"application/merge-patch+json", `{"metadata":{"labels":{"vcluster.com/owner-vcluster":"team-a"}}}`},
			{"application/json-patch+json", `[{"op":"replace","path":"/metadata/labels/vcluster.com~1owner-vcluster","value":"team-a"}]`},
			{"application/apply-patch+yaml", "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: b-own\n  namespace: arena\n  labels: {vcluster.com/owner-vcluster: team-a}\n"},
		} {
			path := "/apis/example.com/v1/namespaces/arena" + own
			if c.contentType == "application/apply-patch+yaml" {
				path += "?fieldManager=attacker&force=true"
			}
			if got := a.send(t, ctx, false, "PATCH", path, c.contentType, []byte(c.body)); got.code != 200 {
				t.Errorf("%s: %d %s", c.contentType, got.code, truncate(got.body))
			}
			wantOwner(t, objectLabels(t, ctx, a.target, "arena", "b-own"), "team-b")
		}
		got := a.send(t, ctx, false, "POST", "/apis/example.com/v1/namespaces/arena/myresources", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"generateName":"planted-","labels":{"vcluster.com/owner-vcluster":"team-a","vcluster.com/owner-project":"default"}},"spec":{"name":"x"}}`))
		if got.code != 201 {
			t.Fatalf("create with generateName: %d %s", got.code, truncate(got.body))
		}
		var created metav1.PartialObjectMetadata
		_ = json.Unmarshal(got.body, &created)
		wantOwner(t, objectLabels(t, ctx, a.target, "arena", created.Name), "team-b")
		if n := names(t, ctx, a.teamA, "-n", "arena"); fmt.Sprint(n) != "[a-secret]" {
			t.Errorf("team-a sees %v, want only its own object", n)
		}
		kubectl(t, ctx, a.teamB, "delete", "myresource", created.Name, "-n", "arena")
		_ = before
	})

	t.Run("watchers that never read leave memory bounded", func(t *testing.T) {
		before := a.rssMiB(t)
		var stalled []*http.Response
		for range 50 {
			req, _ := http.NewRequestWithContext(ctx, "GET", a.directBase+"/apis/example.com/v1/namespaces/arena/myresources?watch=true", nil)
			resp, err := a.direct.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			stalled = append(stalled, resp) // never read
		}
		big := strings.Repeat("y", 200<<10)
		for i := range 60 {
			body := fmt.Sprintf(`{"spec":{"name":"%d-%s"}}`, i, big)
			if got := a.send(t, ctx, false, "PATCH", "/apis/example.com/v1/namespaces/arena"+own, "application/merge-patch+json", []byte(body)); got.code != 200 {
				t.Fatalf("update %d: %d %s", i, got.code, truncate(got.body))
			}
		}
		if grew := a.rssMiB(t) - before; grew > 100 {
			t.Errorf("crproxy's resident memory grew by %d MiB with 50 stalled watchers of 60 updates of 200 KiB", grew)
		}
		for _, resp := range stalled {
			resp.Body.Close()
		}
		// Others are served meanwhile.
		if got := a.send(t, ctx, true, "GET", "/apis/example.com/v1/namespaces/arena/myresources", "", nil); got.code != 200 {
			t.Errorf("a list beside the stalled watchers: %d", got.code)
		}
	})

	t.Run("refused callers with unique paths leave memory bounded", func(t *testing.T) {
		testFloodLeavesMemoryBounded(t, ctx, a)
	})

	t.Run("deletecollection removes only one's own objects", func(t *testing.T) {
		got := a.send(t, ctx, false, "DELETE", "/apis/example.com/v1/namespaces/arena/myresources", "", nil)
		if got.code != 200 {
			t.Fatalf("deletecollection: %d %s", got.code, truncate(got.body))
		}
		crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
			if n := names(t, ctx, a.target, "-n", "arena"); fmt.Sprint(n) != "[a-secret]" {
				return fmt.Sprintf("the target holds %v, want only team-a's object", n)
			}
			return ""
		})
		if spec := kubectl(t, ctx, a.teamA, "get", "myresource", "a-secret", "-n", "arena", "-o", "jsonpath={.spec.name}"); spec != "team-a only" {
			t.Errorf("team-a reads its object as %q", spec)
		}
	})
}

// rvAt is the resourceVersion of the MyResource arena/name at the target.
func rvAt(t *testing.T, ctx context.Context, target *localcluster.APIServer, name string) uint64 {
	t.Helper()
	var rv uint64
	fmt.Sscan(kubectl(t, ctx, target, "get", "myresource", name, "-n", "arena", "-o", "jsonpath={.metadata.resourceVersion}"), &rv)
	return rv
}

// uidAt is the UID of the MyResource arena/name at the target.
func uidAt(t *testing.T, ctx context.Context, target *localcluster.APIServer, name string) string {
	t.Helper()
	return kubectl(t, ctx, target, "get", "myresource", name, "-n", "arena", "-o", "jsonpath={.metadata.uid}")
}

// continueAt is a continue token in crproxy's (kube-apiserver's) encoding
// that resumes a list after namespace/name at resourceVersion rv.
func continueAt(rv uint64, namespace, name string) string {
	data, _ := json.Marshal(map[string]any{"v": "meta.k8s.io/v1", "rv": rv, "ns": namespace, "start": name})
	return base64.RawURLEncoding.EncodeToString(data)
}
