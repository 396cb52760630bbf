package linearize

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/pkg/config"
)

// Endpoint sends raw requests for MyResources (example.com/v1) to one
// server: the target, crproxy straight, or the client cluster. Raw, not
// client-go's REST client: that one retries a 503 with Retry-After up to
// ten times and hides each answer's Warning headers, and the history needs
// every answer as it came.
type Endpoint struct {
	// Name says where requests go ("target", "crproxy", "client"); it is
	// each operation's Via.
	Name string
	// CreateLabels are added to every object it creates: the owner
	// labels, for creates straight at the target.
	CreateLabels map[string]string
	base         string
	hc           *http.Client

	// dialed is when each connection was dialed, by local address: the
	// server process a request reached is the one that accepted its
	// connection.
	mu     sync.Mutex
	dialed map[string]time.Time
}

// Endpoints are the three ways to MyResources that the consistency tests
// use: the target straight, as its admin, creating objects with the owner
// labels of the client named owner ("target"); crproxy straight
// ("crproxy"); and the client cluster, through its aggregator ("client");
// the last two as the client cluster's admin.
func Endpoints(target, client *localcluster.APIServer, p *crproxytest.Proxy, owner string) (atTarget, straight, viaClient *Endpoint, err error) {
	if atTarget, err = NewEndpoint("target", target.RESTConfig()); err != nil {
		return nil, nil, nil, err
	}
	atTarget.CreateLabels = config.Client{Name: owner}.OwnerLabels()
	direct, err := p.DirectConfig(localcluster.AdminUser, "system:masters")
	if err != nil {
		return nil, nil, nil, err
	}
	if straight, err = NewEndpoint("crproxy", direct); err != nil {
		return nil, nil, nil, err
	}
	if viaClient, err = NewEndpoint("client", client.RESTConfig()); err != nil {
		return nil, nil, nil, err
	}
	return atTarget, straight, viaClient, nil
}

// NewEndpoint reaches the server of cfg, with its credentials.
func NewEndpoint(name string, cfg *rest.Config) (*Endpoint, error) {
	cfg = rest.CopyConfig(cfg)
	e := &Endpoint{Name: name, base: strings.TrimSuffix(cfg.Host, "/"), dialed: map[string]time.Time{}}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		at := time.Now()
		c, err := dialer.DialContext(ctx, network, address)
		if err == nil {
			e.mu.Lock()
			e.dialed[c.LocalAddr().String()] = at
			e.mu.Unlock()
		}
		return c, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	e.hc = hc
	return e, nil
}

// Object is what the tests read of a MyResource.
type Object struct {
	Name, ResourceVersion string
	Value                 string // spec.name
	Labels                map[string]string
}

// Answer is one HTTP answer.
type Answer struct {
	// Err is a transport error (no answer); Sent is false when the
	// request certainly never reached the server (connection refused).
	Err  error
	Sent bool
	Code int
	// Reason and Message are the Status of an error answer.
	Reason  metav1.StatusReason
	Message string
	// DetailsName is the Status's details.name: the object a 404 is
	// about (an aggregator's 404 for an unknown path has none).
	DetailsName string
	// Warnings are the answer's Warning headers.
	Warnings []string
	Body     []byte
	// Dialed is when the connection the request went on was dialed (zero
	// when it got none): the server process that may have acted on the
	// request is the one that was running then.
	Dialed time.Time
}

// CrproxyWarning is the first Warning crproxy added ("299 crproxy ..."),
// or "".
func (a Answer) CrproxyWarning() string {
	for _, w := range a.Warnings {
		if strings.Contains(w, " crproxy ") || strings.HasPrefix(w, "crproxy") {
			return w
		}
	}
	return ""
}

// OK is a 2xx answer.
func (a Answer) OK() bool { return a.Err == nil && a.Code >= 200 && a.Code < 300 }

// Describe is the answer in one line, for messages.
func (a Answer) Describe() string {
	if a.Err != nil {
		return a.Err.Error()
	}
	s := strconv.Itoa(a.Code)
	if a.Reason != "" {
		s += " " + string(a.Reason)
	}
	if a.Message != "" {
		s += ": " + a.Message
	}
	return s
}

func (e *Endpoint) path(namespace, name string) string {
	p := "/apis/example.com/v1/namespaces/" + namespace + "/myresources"
	if name != "" {
		p += "/" + name
	}
	return p
}

func (e *Endpoint) do(ctx context.Context, method, path, contentType string, body []byte) Answer {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, reader)
	if err != nil {
		return Answer{Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	var dialed time.Time
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		e.mu.Lock()
		dialed = e.dialed[info.Conn.LocalAddr().String()]
		e.mu.Unlock()
	}}))
	resp, err := e.hc.Do(req)
	if err != nil {
		return Answer{Err: err, Sent: !errors.Is(err, syscall.ECONNREFUSED), Dialed: dialed}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	a := Answer{Sent: true, Code: resp.StatusCode, Warnings: resp.Header.Values("Warning"), Body: data, Dialed: dialed}
	if err != nil {
		// The status line came, the body did not: the server answered,
		// but what it said is lost.
		a.Err = err
		return a
	}
	if !a.OK() {
		var s metav1.Status
		if json.Unmarshal(data, &s) == nil && s.Kind == "Status" {
			a.Reason, a.Message = s.Reason, s.Message
			if s.Details != nil {
				a.DetailsName = s.Details.Name
			}
		}
	}
	return a
}

type wireObject struct {
	Metadata struct {
		Name            string            `json:"name"`
		ResourceVersion string            `json:"resourceVersion"`
		Labels          map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Name string `json:"name"`
	} `json:"spec"`
}

func (w wireObject) object() Object {
	return Object{Name: w.Metadata.Name, ResourceVersion: w.Metadata.ResourceVersion, Value: w.Spec.Name, Labels: w.Metadata.Labels}
}

// Get reads one object. A nil object with an OK error is a 404.
func (e *Endpoint) Get(ctx context.Context, namespace, name string, resourceVersion string) (*Object, Answer) {
	path := e.path(namespace, name)
	if resourceVersion != "" {
		path += "?resourceVersion=" + url.QueryEscape(resourceVersion)
	}
	return decodeObject(e.do(ctx, http.MethodGet, path, "", nil))
}

// ListOptions are a LIST's parameters.
type ListOptions struct {
	LabelSelector string
	// Limit > 0 pages the list: the first page, then continue tokens.
	Limit int
	// ResourceVersion of the first page ("": a consistent read).
	ResourceVersion string
}

// ListResult is a whole list, every page.
type ListResult struct {
	Items []Object
	// ResourceVersion is the first page's.
	ResourceVersion string
	Pages           int
	// First is the first page's answer: a paged list is the state at the
	// first page's resourceVersion, so it takes effect while that page is
	// asked.
	First Answer
	// Warnings are every page's crproxy Warnings.
	Warnings []string
}

// List reads every page of a list. On failure it returns the failing
// page's answer.
func (e *Endpoint) List(ctx context.Context, namespace string, o ListOptions, firstPageDone func()) (*ListResult, Answer) {
	res := &ListResult{}
	token := ""
	for {
		q := url.Values{}
		if o.LabelSelector != "" {
			q.Set("labelSelector", o.LabelSelector)
		}
		if o.Limit > 0 {
			q.Set("limit", strconv.Itoa(o.Limit))
		}
		if token != "" {
			q.Set("continue", token)
		} else if o.ResourceVersion != "" {
			q.Set("resourceVersion", o.ResourceVersion)
		}
		path := e.path(namespace, "")
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		a := e.do(ctx, http.MethodGet, path, "", nil)
		if res.Pages == 0 && firstPageDone != nil {
			firstPageDone()
		}
		if w := a.CrproxyWarning(); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
		if !a.OK() {
			return nil, a
		}
		var page struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
				Continue        string `json:"continue"`
			} `json:"metadata"`
			Items []wireObject `json:"items"`
		}
		if err := json.Unmarshal(a.Body, &page); err != nil {
			a.Err = fmt.Errorf("decoding the list: %w", err)
			return nil, a
		}
		if res.Pages == 0 {
			res.First, res.ResourceVersion = a, page.Metadata.ResourceVersion
		}
		res.Pages++
		for _, w := range page.Items {
			res.Items = append(res.Items, w.object())
		}
		if page.Metadata.Continue == "" {
			return res, a
		}
		if res.Pages > 1000 {
			a.Err = errors.New("more than 1000 pages")
			return nil, a
		}
		token = page.Metadata.Continue
	}
}

// Create creates obj (any JSON-encodable MyResource) and returns the
// object stored.
func (e *Endpoint) Create(ctx context.Context, namespace string, obj any) (*Object, Answer) {
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, Answer{Err: err}
	}
	return decodeObject(e.do(ctx, http.MethodPost, e.path(namespace, ""), "application/json", body))
}

// MergePatch applies a JSON merge patch.
func (e *Endpoint) MergePatch(ctx context.Context, namespace, name string, patch []byte) (*Object, Answer) {
	return decodeObject(e.do(ctx, http.MethodPatch, e.path(namespace, name), "application/merge-patch+json", patch))
}

// Delete deletes one object.
func (e *Endpoint) Delete(ctx context.Context, namespace, name string) Answer {
	return e.do(ctx, http.MethodDelete, e.path(namespace, name), "", nil)
}

// decodeObject decodes the object of a 2xx answer.
func decodeObject(a Answer) (*Object, Answer) {
	if !a.OK() {
		return nil, a
	}
	var w wireObject
	if err := json.Unmarshal(a.Body, &w); err != nil {
		a.Err = fmt.Errorf("decoding the object: %w", err)
		return nil, a
	}
	o := w.object()
	return &o, a
}
