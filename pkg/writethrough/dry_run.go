package writethrough

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// dryRunStandInNamespace is where a dry run runs when its namespace exists
// in the client but not yet at the target: every cluster has it, and the
// target refuses any create, even a dry one, into a namespace it lacks.
const dryRunStandInNamespace = "default"

// dryRunNamespaceMissing reports whether err is ensureTargetNamespace's
// refusal of a dry run whose namespace the target lacks.
func dryRunNamespaceMissing(req *Request, err error) bool {
	return isDryRun(req) && apierrors.IsNotFound(err)
}

// dryRunInStandIn carries a dry run that may create an object (a create,
// a server-side apply) whose namespace the target does not have yet, as
// the same dry run in dryRunStandInNamespace under a name no object has,
// and answers as the target would have in the request's namespace: the
// object (defaulted, validated, admitted by the target) with its own name
// and namespace. Nothing is written, not even the namespace. What depends
// on the namespace itself (quota, a webhook's namespaceSelector) is the
// stand-in's. When RBAC refuses the identity there, or it does not exist,
// the answer is missing, the refusal given.
func (w *Writer) dryRunInStandIn(ctx context.Context, req *Request, method, contentType string, body []byte, missing error) (*Response, error) {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, missing
	}
	meta, err := metadataOf(obj)
	if err != nil {
		return nil, missing
	}
	name, _ := meta["name"].(string)
	standIn := ""
	if name != "" {
		standIn = standInName(name)
		meta["name"] = standIn
	}
	meta["namespace"] = dryRunStandInNamespace
	if method == http.MethodPatch && meta["resourceVersion"] == createOnlyResourceVersion {
		// An apply made create-only: the stand-in name is one no object
		// has, and a precondition would refuse the create.
		delete(meta, "resourceVersion")
	}
	sent, err := json.Marshal(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	path := strings.Replace(req.Path, "/namespaces/"+req.Namespace+"/", "/namespaces/"+dryRunStandInNamespace+"/", 1)
	if req.Name != "" {
		path = strings.TrimSuffix(path, "/"+req.Name) + "/" + standIn
	}
	resp, err := w.do(ctx, req.Resource.Target, w.caller(req), targetRequest{method: method, path: path, query: req.Query, contentType: contentType, body: sent})
	if err != nil {
		return nil, err
	}
	if refusedInStandIn(resp) {
		return nil, missing
	}
	if standIn != "" {
		resp.Body = bytes.ReplaceAll(resp.Body, []byte(standIn), []byte(name))
	}
	if resp.Code >= 200 && resp.Code <= 299 {
		var answer map[string]any
		if json.Unmarshal(resp.Body, &answer) == nil {
			if m, ok := answer["metadata"].(map[string]any); ok {
				m["namespace"] = req.Namespace
				if out, err := json.Marshal(answer); err == nil {
					resp.Body = out
				}
			}
		}
	}
	return resp, nil
}

// refusedInStandIn reports whether the target refused the stand-in for
// being the stand-in: RBAC that does not extend to dryRunStandInNamespace,
// or a target without it. Other refusals (validation, admission) are the
// object's and pass through.
func refusedInStandIn(resp *Response) bool {
	switch resp.Code {
	case http.StatusNotFound:
		return true
	case http.StatusForbidden:
		var status *apierrors.StatusError
		if !errors.As(statusError(resp), &status) {
			return true
		}
		msg := status.ErrStatus.Message
		return strings.Contains(msg, " cannot ") && strings.Contains(msg, `in the namespace "`+dryRunStandInNamespace+`"`)
	}
	return false
}

// standInName is name with a random suffix, no longer than the longest
// name an object may have (253), so it is valid where name is.
func standInName(name string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	suffix := "-dry-run-" + hex.EncodeToString(b)
	if len(name)+len(suffix) > 253 {
		name = name[:253-len(suffix)]
	}
	return name + suffix
}
