package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/storage"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

const (
	// bookmarkInterval is how often a watch that asked for bookmarks gets
	// one when nothing else happened, as the kube-apiserver's cacher does.
	bookmarkInterval = time.Minute
	// minWatchTimeout is the apiserver's default --min-request-timeout: a
	// watch without timeoutSeconds ends after 1 to 2 times this.
	minWatchTimeout = 30 * time.Minute
)

func (h *apiHandler) watch(w http.ResponseWriter, r *http.Request, res *mirror.Resource, info *request.RequestInfo) {
	out, opts, ok := readRequest(w, r, true)
	if !ok {
		return
	}
	if err := opts.selectName(info.Name); err != nil {
		writeError(w, err)
		return
	}
	format := out.format
	timeout := time.Duration(float64(minWatchTimeout) * (1 + rand.Float64()))
	if opts.TimeoutSeconds != nil {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	sendInitial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	stream := &watchStream{w: w, res: res, opts: opts, format: format, metaAPIVersion: out.metaAPIVersion(), namespace: info.Namespace}
	if format == formatTable {
		include, err := includeObjectPolicy(r)
		if err != nil {
			writeError(w, err)
			return
		}
		stream.includeObject, stream.table = include, h.tableConvertor(ctx, res)
	}
	watcher, snap, err := res.Watch(ctx, opts.read(info.Namespace))
	if apierrors.IsResourceExpired(err) || storage.IsTooLargeResourceVersion(err) {
		// The apiserver answers an expired watch, and one whose version
		// its cache did not reach in time, with 200 and an ERROR event.
		stream.writeError(err)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	defer watcher.Stop()
	stream.start()

	if snap != nil {
		snap.Ascend(info.Namespace, "", "", func(o *store.Object) bool {
			if opts.matches(o) {
				stream.writeObject(watch.Added, o.JSON)
			}
			return !stream.failed
		})
		if sendInitial {
			stream.writeBookmark(snap.ResourceVersion(), true)
		}
	}
	stream.flush()
	if stream.failed {
		return
	}

	lastBookmark := time.Now()
	for {
		next := ctx
		var cancelNext context.CancelFunc = func() {}
		if stream.bookmarks() {
			next, cancelNext = context.WithDeadline(ctx, lastBookmark.Add(bookmarkInterval))
		}
		ev, err := watcher.Next(next)
		cancelNext()
		switch {
		case err == nil:
			stream.writeEvent(ev)
			// Flush once nothing more is pending, not per event; never
			// leave written events in the buffer while Next blocks.
			if !watcher.Pending() {
				stream.flush()
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			stream.writeBookmark(watcher.ResourceVersion(), false)
			stream.flush()
			lastBookmark = time.Now()
		case errors.Is(err, store.ErrExpired):
			stream.writeError(apierrors.NewResourceExpired("the watch fell behind the event buffer; restart it"))
			return
		default:
			stream.writeError(apierrors.NewInternalError(err))
			return
		}
		if stream.failed {
			return
		}
	}
}

// watchBuffers lends watch streams their write buffers: a stream holds one
// only from its first unflushed event to the flush, so an idle watch (most
// of them, most of the time) holds none. With a buffer each, 1,000 watches
// held 30 MiB (B3's heap profile).
var watchBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// watchStream writes watch events as the kube-apiserver does: one JSON
// object per line, {"type":..., "object":...}.
type watchStream struct {
	w http.ResponseWriter
	// bw is the lent buffer while events are unflushed, else nil.
	bw     *bufio.Writer
	res    *mirror.Resource
	opts   *readOptions
	format outputFormat
	// metaAPIVersion is the apiVersion of PartialObjectMetadata events.
	metaAPIVersion string
	namespace      string
	// table and includeObject render events as Tables (kubectl get -w).
	table         *TableConvertor
	includeObject metav1.IncludeObjectPolicy
	// scratch is reused for the PartialObjectMetadata of each event.
	scratch    []byte
	started    bool
	headerSent bool
	failed     bool
}

func (s *watchStream) start() {
	if s.started {
		return
	}
	s.started = true
	s.w.Header().Set("Content-Type", "application/json")
	s.w.Header().Set("Transfer-Encoding", "chunked")
	s.w.WriteHeader(http.StatusOK)
	s.flush()
}

// writeEvent sends ev as this watcher sees it: a change that moves an object
// into the caller's selection is ADDED, out of it DELETED (with the previous
// state at the event's resourceVersion), as the apiserver's cacher does.
func (s *watchStream) writeEvent(ev store.Event) {
	if s.namespace != "" && ev.Object.Namespace != s.namespace {
		return
	}
	cur := ev.Type != watch.Deleted && s.opts.matches(ev.Object)
	prev := false
	if ev.PrevObject != nil {
		prev = s.opts.matches(ev.PrevObject)
	}
	if ev.Type == watch.Deleted {
		prev = s.opts.matches(ev.Object)
	}
	switch {
	case cur && !prev:
		s.writeObject(watch.Added, ev.Object.JSON)
	case cur && prev:
		s.writeObject(watch.Modified, ev.Object.JSON)
	case !cur && prev && ev.Type == watch.Deleted:
		s.writeObject(watch.Deleted, ev.Object.JSON)
	case !cur && prev:
		data, err := withResourceVersion(ev.PrevObject.JSON, ev.ResourceVersion)
		if err != nil {
			s.writeError(apierrors.NewInternalError(err))
			return
		}
		s.writeObject(watch.Deleted, data)
	}
}

func (s *watchStream) writeObject(t watch.EventType, object []byte) {
	s.start()
	switch s.format {
	case formatTable:
		// Tables are rendered per event; the column headers go with the
		// first event only, as the apiserver does.
		table, err := s.table.ConvertObjects([][]byte{object}, nil, s.includeObject, s.headerSent, time.Now())
		if err != nil {
			s.writeError(apierrors.NewInternalError(err))
			return
		}
		s.headerSent = true
		object = table
	case formatMetadata:
		partial, err := appendPartialObjectMetadata(s.scratch[:0], object, s.metaAPIVersion)
		if err != nil {
			s.writeError(apierrors.NewInternalError(err))
			s.failed = true
			return
		}
		s.scratch = partial
		object = partial
	case formatMetadataList:
		// The apiserver cannot convert an event's object to a list: its
		// encoder fails and it ends the stream (after the headers, before
		// the event).
		s.failed = true
		return
	}
	bw := s.buffer()
	_, _ = bw.WriteString(`{"type":"`)
	_, _ = bw.WriteString(string(t))
	_, _ = bw.WriteString(`","object":`)
	_, _ = bw.Write(object)
	if _, err := bw.WriteString("}\n"); err != nil {
		s.failed = true
	}
}

// buffer returns the stream's write buffer, borrowing one if it holds none.
func (s *watchStream) buffer() *bufio.Writer {
	if s.bw == nil {
		s.bw = watchBuffers.Get().(*bufio.Writer)
		s.bw.Reset(s.w)
	}
	return s.bw
}

// bookmarks tells whether the stream sends BOOKMARK events: when asked
// for, except to Tables. (A PartialObjectMetadataList watch ends at its
// first bookmark, as at any event.)
func (s *watchStream) bookmarks() bool {
	return s.opts.AllowWatchBookmarks && s.format != formatTable
}

// writeBookmark sends a BOOKMARK carrying only a resourceVersion; the one
// that ends sendInitialEvents is annotated k8s.io/initial-events-end. In a
// metadata watch it is a PartialObjectMetadata, as the apiserver converts
// its bookmark object like any other.
func (s *watchStream) writeBookmark(rv uint64, initialEventsEnd bool) {
	if !s.bookmarks() {
		return
	}
	meta := metav1.ObjectMeta{ResourceVersion: strconv.FormatUint(rv, 10)}
	if initialEventsEnd {
		meta.Annotations = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
	}
	obj := struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
	}{metav1.TypeMeta{APIVersion: s.res.GVR.GroupVersion().String(), Kind: s.res.API().Kind}, meta}
	data, _ := json.Marshal(obj)
	s.writeObject(watch.Bookmark, data)
}

// writeError sends an ERROR event with a Status and ends the stream.
func (s *watchStream) writeError(err error) {
	data, _ := json.Marshal(statusOf(err))
	s.format = formatJSON
	s.writeObject(watch.Error, data)
	s.flush()
}

// flush sends what is buffered and gives the buffer back.
func (s *watchStream) flush() {
	if s.bw != nil {
		err := s.bw.Flush()
		s.bw.Reset(nil)
		watchBuffers.Put(s.bw)
		s.bw = nil
		if err != nil {
			s.failed = true
			return
		}
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// withResourceVersion rewrites an object's metadata.resourceVersion.
func withResourceVersion(object []byte, rv uint64) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(object, &m); err != nil {
		return nil, err
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["metadata"] = meta
	}
	meta["resourceVersion"] = strconv.FormatUint(rv, 10)
	return json.Marshal(m)
}
