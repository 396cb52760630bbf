package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// ownKeys are the top-level keys crproxy reads.
var ownKeys = []string{"client", "targets", "experimental"}

// vclusterKeys are the other top-level keys of a vcluster.yaml. crproxy
// accepts them unread, so that the vcluster.yaml of the client can be used as
// it is; any other top-level key is a mistake, most likely a typo of one of
// ownKeys. The list covers vcluster.yaml since v0.20 and the Helm values of
// earlier releases (which the vCluster documentation still shows), except the
// old "proxy" key: a top-level proxy in a file that configures
// experimental.proxy is far more likely a misplaced experimental.proxy.
var vclusterKeys = map[string]bool{
	// vcluster.yaml, v0.20 and later.
	"controlPlane": true, "sync": true, "networking": true, "policies": true,
	"rbac": true, "exportKubeConfig": true, "integrations": true, "deploy": true,
	// platform is crproxy's too: decode reads its kubeconfig.
	"plugins": true, "plugin": true, "platform": true, "telemetry": true,
	"pro": true, "sleepMode": true, "logging": true, "privateNodes": true,
	"external": true, "serviceCIDR": true, "global": true,
	// Helm values before v0.20.
	"vcluster": true, "syncer": true, "api": true, "controller": true,
	"scheduler": true, "etcd": true, "embeddedEtcd": true, "storage": true,
	"k3sToken": true, "autoDeletePersistentVolumeClaims": true,
	"globalAnnotations": true, "proLicenseSecret": true, "headless": true,
	"defaultImageRegistry": true, "fallbackHostDns": true, "mapServices": true,
	"volumes": true, "serviceAccount": true, "workloadServiceAccount": true,
	"nodeSelector": true, "affinity": true, "priorityClassName": true,
	"tolerations": true, "labels": true, "podLabels": true, "annotations": true,
	"podAnnotations": true, "podDisruptionBudget": true, "service": true,
	"ingress": true, "securityContext": true, "podSecurityContext": true,
	"openshift": true, "coredns": true, "isolation": true, "init": true,
	"multiNamespaceMode": true, "noopSyncer": true, "monitoring": true,
	"centralAdmission": true, "enableHA": true, "replicas": true, "job": true,
	"hostpathMapper": true, "admin": true, "fallbackHostCluster": true,
}

// misplaced maps keys that belong deeper in the file to where they belong.
var misplaced = map[string]string{
	"proxy":           "experimental.proxy",
	"customResources": "experimental.proxy.customResources",
}

// rawProxy is Proxy with its entries left undecoded, so that each entry is
// decoded on its own and its errors get an exact path: resource keys contain
// dots, which makes the dotted paths of a whole-map decode ambiguous.
type rawProxy struct {
	CustomResources map[string]json.RawMessage `json:"customResources"`
}

// decodeResult is what decode found besides the Config.
type decodeResult struct {
	errs field.ErrorList
	// typeErrs are the paths of the objects that could not be decoded
	// completely; validation problems about them would be misleading.
	typeErrs []string
}

// decode converts YAML into a Config. Problems with a field path go into the
// result; an error is returned only when the document is not a YAML mapping.
func decode(data []byte) (*Config, decodeResult, error) {
	var res decodeResult
	// YAMLToJSONStrict rejects duplicate keys, which plain YAML would let
	// the later one win silently.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, res, fmt.Errorf("invalid YAML: %w", err)
	}
	// YAMLToJSON reads the first document only; the documentation's
	// access-mode example holds two, and pasting both must not silently
	// drop the second.
	if n := documents(data); n > 1 {
		return nil, res, fmt.Errorf("invalid configuration: the file holds %d YAML documents separated by ---; crproxy reads one configuration, so keep one document", n)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, res, errors.New("invalid configuration: the document must be a YAML mapping with the keys client, targets and experimental")
	}
	c := &Config{}
	for _, key := range sortedKeys(top) {
		raw, p := top[key], field.NewPath(key)
		switch {
		case key == "client":
			res.strict(raw, &c.Client, p)
		case key == "targets":
			var items []json.RawMessage
			if !res.plain(raw, &items, p) {
				continue
			}
			c.Targets = make([]Target, len(items))
			for i, item := range items {
				res.strict(item, &c.Targets[i], p.Index(i))
			}
		case key == "experimental":
			res.experimental(raw, &c.Experimental, p)
		case key == "platform":
			// Before vclusterKeys, which lists it too: the section is
			// vCluster's and crproxy's.
			res.platform(raw, &c.Platform, p)
		case vclusterKeys[key]:
		case misplaced[key] != "":
			res.errs = append(res.errs, field.Invalid(p, field.OmitValueType{},
				fmt.Sprintf("unknown top-level key; move it to %s", misplaced[key])))
		default:
			candidates := append(slices.Clone(ownKeys), sortedKeys(vclusterKeys)...)
			res.errs = append(res.errs, field.Invalid(p, field.OmitValueType{},
				"unknown top-level key: neither a crproxy key (client, targets, experimental) nor a vcluster.yaml key; "+fix(key, candidates)))
		}
	}
	return c, res, nil
}

// documents counts the non-empty YAML documents in data.
func documents(data []byte) int {
	dec, n := yamlv2.NewDecoder(bytes.NewReader(data)), 0
	for {
		var doc any
		if err := dec.Decode(&doc); err != nil {
			return n // io.EOF, or a syntax error YAMLToJSONStrict reported
		}
		if doc != nil {
			n++
		}
	}
}

// experimental decodes the experimental section. Only proxy is crproxy's; the
// other keys are vCluster's own experimental settings, which change between
// releases and so are ignored, unless they look like a mistyped proxy.
func (res *decodeResult) experimental(raw json.RawMessage, exp *Experimental, p *field.Path) {
	var keys map[string]json.RawMessage
	if !res.plain(raw, &keys, p) {
		return
	}
	for _, key := range sortedKeys(keys) {
		switch kp := p.Child(key); {
		case key == "proxy":
			res.proxy(keys[key], &exp.Proxy, kp)
		case key == "customResources":
			res.errs = append(res.errs, field.Invalid(kp, field.OmitValueType{},
				"unknown field; move it to experimental.proxy.customResources"))
		case strings.HasPrefix(strings.ToLower(key), "prox") || suggest(key, []string{"proxy"}) != "":
			res.errs = append(res.errs, field.Invalid(kp, field.OmitValueType{},
				`unknown field; did you mean "proxy"?`))
		}
	}
}

// platform decodes the platform section. A vcluster.yaml has a platform
// section of its own (how vCluster itself reaches the platform), so, as under
// experimental, crproxy reads only its key, kubeconfig, and ignores the
// others, unless they look like a mistyped kubeconfig. The section is
// crproxy's, and *pl set, when it holds kubeconfig: a vcluster.yaml's platform
// section alone turns on no check.
func (res *decodeResult) platform(raw json.RawMessage, pl **Platform, p *field.Path) {
	var keys map[string]json.RawMessage
	if !res.plain(raw, &keys, p) {
		return
	}
	for _, key := range sortedKeys(keys) {
		switch kp := p.Child(key); {
		case key == "kubeconfig":
			*pl = &Platform{}
			res.plain(keys[key], &(*pl).Kubeconfig, kp)
		case strings.HasPrefix(strings.ToLower(key), "kube") || suggest(key, []string{"kubeconfig"}) != "":
			res.errs = append(res.errs, field.Invalid(kp, field.OmitValueType{},
				`unknown field; did you mean "kubeconfig"?`))
		}
	}
}

// proxy decodes experimental.proxy, each custom resource entry on its own.
func (res *decodeResult) proxy(raw json.RawMessage, proxy *Proxy, p *field.Path) {
	var rp rawProxy
	res.strict(raw, &rp, p)
	if rp.CustomResources == nil {
		return
	}
	crPath := p.Child("customResources")
	proxy.CustomResources = make(map[string]CustomResourceProxy, len(rp.CustomResources))
	for _, key := range sortedKeys(rp.CustomResources) {
		var cr CustomResourceProxy
		res.strict(rp.CustomResources[key], &cr, crPath.Key(key))
		proxy.CustomResources[key] = cr
	}
}

// plain decodes raw into v without strictness (v is a map, a slice of raw
// messages or a string) and reports a type mismatch at p.
func (res *decodeResult) plain(raw json.RawMessage, v any, p *field.Path) bool {
	if err := json.Unmarshal(raw, v); err != nil {
		res.typeError(raw, v, p, err)
		return false
	}
	return true
}

// strict decodes raw into the struct v, reporting every unknown field with
// its full path and the field names v does know.
func (res *decodeResult) strict(raw json.RawMessage, v any, p *field.Path) {
	strictErrs, err := kjson.UnmarshalStrict(raw, v, kjson.DisallowUnknownFields)
	if err != nil {
		res.typeError(raw, v, p, err)
		return
	}
	for _, se := range strictErrs {
		var fe kjson.FieldError
		if !errors.As(se, &fe) {
			res.errs = append(res.errs, field.Invalid(p, field.OmitValueType{}, se.Error()))
			continue
		}
		res.errs = append(res.errs, unknownField(reflect.TypeOf(v).Elem(), fe.FieldPath(), p))
	}
}

// typeError reports a value of the wrong type. The strict decoder's error
// types are internal, so the value is decoded again with encoding/json, whose
// UnmarshalTypeError names the offending field.
func (res *decodeResult) typeError(raw json.RawMessage, v any, p *field.Path, err error) {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		errors.As(json.Unmarshal(raw, reflect.New(reflect.TypeOf(v).Elem()).Interface()), &te)
	}
	// The rest of the object may be undecoded too; see Parse.
	res.typeErrs = append(res.typeErrs, p.String())
	if te == nil {
		res.errs = append(res.errs, field.Invalid(p, field.OmitValueType{}, err.Error()))
		return
	}
	if te.Field != "" {
		for name := range strings.SplitSeq(te.Field, ".") {
			p = p.Child(name)
		}
	}
	detail := fmt.Sprintf("must be %s, not %s", describeType(te.Type), describeJSON(te.Value))
	if te.Type.Kind() == reflect.String && te.Value != "object" && te.Value != "array" {
		// YAML reads unquoted yes, on, n, 1.0 and the like as booleans
		// and numbers.
		detail += "; put the value in quotes"
	}
	res.errs = append(res.errs, field.Invalid(p, field.OmitValueType{}, detail))
}

// describeType names a Go type the way a YAML author thinks of it.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return "a " + t.Kind().String()
	}
}

// describeJSON names a JSON value kind the way a YAML author thinks of it.
func describeJSON(kind string) string {
	switch kind {
	case "object":
		return "a mapping"
	case "array":
		return "a list"
	case "bool":
		return "a boolean"
	default:
		if strings.HasPrefix(kind, "number") {
			return "a number"
		}
		return "a " + kind
	}
}

// unknownField turns the strict decoder's path of an unknown field, relative
// to the struct type t decoded at base, into a field error that lists the
// fields the enclosing struct does know and suggests the closest one.
func unknownField(t reflect.Type, kpath string, base *field.Path) *field.Error {
	// The path only has struct fields: lists and maps are decoded element
	// by element, so that their indexes and keys are never in it.
	p, segs := base, strings.Split(kpath, ".")
	for _, seg := range segs[:len(segs)-1] {
		p = p.Child(seg)
		if f, ok := fieldByJSONName(t, seg); ok {
			t = f.Type
		}
	}
	name := segs[len(segs)-1]
	known := jsonNames(t)
	return field.Invalid(p.Child(name), field.OmitValueType{},
		fmt.Sprintf("unknown field; %s (known fields: %s)", fix(name, known), strings.Join(known, ", ")))
}

// jsonNames lists the JSON names of a struct type's fields in declaration order.
func jsonNames(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// fieldByJSONName finds the struct field decoded from the JSON name.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for f := range t.Fields() {
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fix says how to fix an unknown key: rename it to a close known name, or
// remove it.
func fix(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "remove it or check its indentation"
}

// suggest returns the candidate closest to name, if one is close enough to be
// a likely typo: equal but for case, or at most two edits away (one for short
// names), transpositions counting as one edit.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		if strings.EqualFold(name, c) {
			return c
		}
		limit := min(2, max(1, len(c)/3))
		if d := editDistance(name, c); d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b.
func editDistance(a, b string) int {
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// sortedKeys returns a map's keys in order, so that messages are deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
