package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/warning"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/reconnect"
	"github.com/crproxy/crproxy/pkg/store"
)

const (
	// syncTimeout is how long a read waits for a resource that was never
	// mirrored (first start, target not answered yet) before 503.
	syncTimeout = 10 * time.Second
	// notOlderThanTimeout is how long a read for a resourceVersion the
	// mirror does not hold yet waits, as the kube-apiserver's cache does.
	notOlderThanTimeout = 3 * time.Second
)

// readRequest negotiates the output format and parses the query of a
// read; on error it has answered and ok is false. While the target is down
// every read carries a Warning saying so.
func readRequest(w http.ResponseWriter, r *http.Request, res *mirror.Resource, watch bool) (out output, opts *readOptions, ok bool) {
	warnIfStale(r.Context(), res)
	out, err := negotiate(r)
	if err == nil {
		opts, err = parseReadOptions(r.URL.Query(), watch)
	}
	if err != nil {
		writeError(w, err)
		return output{}, nil, false
	}
	return out, opts, true
}

func (h *apiHandler) get(w http.ResponseWriter, r *http.Request, res *mirror.Resource, info *request.RequestInfo) {
	out, opts, ok := readRequest(w, r, res, false)
	if !ok {
		return
	}
	ctx := r.Context()
	// The apiserver converts after reading: a missing object is 404
	// before a conversion that cannot apply is 406.
	if err := h.freshEnough(ctx, res, opts); err != nil {
		writeError(w, err)
		return
	}
	obj, _, ok := res.Cache.Get(info.Namespace, info.Name)
	if !ok {
		writeError(w, apierrors.NewNotFound(groupResource(res), info.Name))
		return
	}
	switch out.format {
	case formatTable:
		h.writeTable(w, r, res, []*store.Object{obj}, nil)
	case formatMetadata:
		writeMetadataObject(w, obj, out)
	case formatMetadataList:
		writeError(w, conversionError(out, false))
	default:
		writeRawJSON(w, http.StatusOK, obj.JSON)
	}
}

func (h *apiHandler) list(w http.ResponseWriter, r *http.Request, res *mirror.Resource, info *request.RequestInfo) {
	out, opts, ok := readRequest(w, r, res, false)
	if !ok {
		return
	}
	snap, err := h.listSnapshot(r.Context(), res, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	var afterNamespace, afterName string
	if opts.continue_ != nil {
		afterNamespace, afterName = opts.continue_.Namespace, opts.continue_.Name
	}
	limit := int(opts.Limit)
	var items []*store.Object
	more := false
	snap.Ascend(info.Namespace, afterNamespace, afterName, func(o *store.Object) bool {
		if !opts.matches(o) {
			return true
		}
		if limit > 0 && len(items) == limit {
			more = true
			return false
		}
		items = append(items, o)
		return true
	})
	meta := metav1.ListMeta{ResourceVersion: strconv.FormatUint(snap.ResourceVersion(), 10)}
	if more {
		last := items[len(items)-1]
		meta.Continue = encodeContinue(snap.ResourceVersion(), last.Namespace, last.Name)
	}
	switch out.format {
	case formatTable:
		h.writeTable(w, r, res, items, &meta)
	case formatMetadataList:
		writeMetadataList(w, items, meta, out)
	case formatMetadata:
		writeError(w, conversionError(out, true))
	default:
		writeList(w, res, items, meta)
	}
}

// writeList streams a <Kind>List whose items are the stored JSON, copied,
// never re-encoded.
func writeList(w http.ResponseWriter, res *mirror.Resource, items []*store.Object, meta metav1.ListMeta) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `{"apiVersion":%q,"kind":%q,"metadata":{"resourceVersion":%q`, res.GVR.GroupVersion().String(), res.API.Kind+"List", meta.ResourceVersion)
	if meta.Continue != "" {
		fmt.Fprintf(bw, `,"continue":%q`, meta.Continue)
	}
	_, _ = bw.WriteString(`},"items":[`)
	for i, o := range items {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_, _ = bw.Write(o.JSON)
	}
	_, _ = bw.WriteString("]}\n")
	_ = bw.Flush()
}

// listSnapshot picks the snapshot a list is answered from, by the
// kube-apiserver's resourceVersion rules.
func (h *apiHandler) listSnapshot(ctx context.Context, res *mirror.Resource, opts *readOptions) (*store.Snapshot, error) {
	switch {
	case opts.continue_ != nil:
		if err := waitSynced(ctx, res); err != nil {
			return nil, err
		}
		// A token from another replica may be ahead of this mirror by
		// its lag: wait for it, as for a resourceVersion not older than.
		tokenRV := opts.continue_.ResourceVersion
		if err := waitNotOlderThan(ctx, res, tokenRV); err != nil {
			return nil, err
		}
		snap, err := res.Cache.SnapshotAt(tokenRV)
		if errors.Is(err, store.ErrExpired) {
			return nil, errContinueExpired()
		}
		return snap, err
	case opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact:
		if err := waitSynced(ctx, res); err != nil {
			return nil, err
		}
		snap, err := res.Cache.SnapshotAt(opts.rv)
		if errors.Is(err, store.ErrExpired) {
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", opts.rv, res.Cache.ResourceVersion()))
		}
		if err != nil {
			return nil, storage.NewTooLargeResourceVersionError(opts.rv, res.Cache.ResourceVersion(), 1)
		}
		return snap, nil
	default:
		if err := h.freshEnough(ctx, res, opts); err != nil {
			return nil, err
		}
		return res.Cache.Snapshot(), nil
	}
}

// freshEnough waits until the mirror may answer a read with resourceVersion
// opts.ResourceVersion: "" is a consistent read, "0" any state, N a state
// not older than N.
func (h *apiHandler) freshEnough(ctx context.Context, res *mirror.Resource, opts *readOptions) error {
	if err := waitSynced(ctx, res); err != nil {
		return err
	}
	switch {
	case opts.ResourceVersion == "":
		if _, down := res.Target.Connection.Down(); down {
			// Consistent reads degrade to the mirror's state (warned).
			return nil
		}
		if err := res.WaitConsistent(ctx); err != nil {
			if ctx.Err() != nil {
				return apierrors.NewTimeoutError("request ended before the mirror caught up", 1)
			}
			// The target cannot be asked: serve what the mirror holds,
			// and say so.
			if !warnIfStale(ctx, res) {
				warning.AddWarning(ctx, "crproxy", fmt.Sprintf("target %s did not answer a consistent read (%s); serving cached data at resourceVersion %d", res.Target.ID, mirror.DescribeFailure(err), res.Cache.ResourceVersion()))
			}
		}
		return nil
	case opts.rv == 0:
		return nil
	default:
		return waitNotOlderThan(ctx, res, opts.rv)
	}
}

// waitNotOlderThan waits, bounded as the kube-apiserver's cache does, until
// the mirror holds rv; then it answers the apiserver's "too large resource
// version" (504 with Retry-After).
func waitNotOlderThan(ctx context.Context, res *mirror.Resource, rv uint64) error {
	wait, cancel := context.WithTimeout(ctx, notOlderThanTimeout)
	defer cancel()
	if err := res.Cache.WaitForResourceVersion(wait, rv); err != nil {
		return storage.NewTooLargeResourceVersionError(rv, res.Cache.ResourceVersion(), 1)
	}
	return nil
}

// waitSynced waits, bounded, for a resource that has never been mirrored.
func waitSynced(ctx context.Context, res *mirror.Resource) error {
	if res.Cache.Synced() {
		return nil
	}
	notYet := func() error {
		err := apierrors.NewServiceUnavailable(fmt.Sprintf("%s has not been mirrored from target %s yet", res.GVR.GroupResource(), res.Target.ID))
		err.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 5}
		return err
	}
	wait, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !res.Cache.Synced() {
		if _, down := res.Target.Connection.Down(); down {
			// Nothing to wait for until the target is back.
			return notYet()
		}
		select {
		case <-wait.Done():
			return notYet()
		case <-tick.C:
		}
	}
	return nil
}

// warnIfStale adds the Warning of a read served while the target is
// unreachable or refuses the identity, and reports whether it did.
func warnIfStale(ctx context.Context, res *mirror.Resource) bool {
	st := res.Target.Connection.Status()
	var what string
	switch st.State {
	case reconnect.Unreachable:
		what = "unreachable"
	case reconnect.Forbidden:
		what = "refusing this client's identity"
	default:
		return false
	}
	warning.AddWarning(ctx, "crproxy", fmt.Sprintf("target %s %s since %s; serving cached data at resourceVersion %d",
		res.Target.ID, what, st.Since.UTC().Format(time.RFC3339), res.Cache.ResourceVersion()))
	return true
}
