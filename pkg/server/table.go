package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/util/jsonpath"
)

// CustomResourceColumnDefinition is one additionalPrinterColumns entry of a
// CustomResourceDefinition version. It has the JSON fields of
// k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1.CustomResourceColumnDefinition,
// which is declared here so that crproxy does not depend on
// k8s.io/apiextensions-apiserver; a CRD's columns decode into it directly.
type CustomResourceColumnDefinition struct {
	// Name is a human readable name for the column.
	Name string `json:"name"`
	// Type is an OpenAPI type of the column: string, integer, number,
	// boolean or date.
	Type string `json:"type"`
	// Format is an optional OpenAPI format of the column.
	Format string `json:"format,omitempty"`
	// Description is a human readable description of the column.
	Description string `json:"description,omitempty"`
	// Priority is the column's importance; columns above 0 are shown only
	// by `kubectl get -o wide`.
	Priority int32 `json:"priority,omitempty"`
	// JSONPath is a simple JSON path evaluated against each object.
	JSONPath string `json:"jsonPath"`
}

// tableMetadataDescriptions are the field descriptions of ObjectMeta that
// kube-apiserver uses for the Name and Age columns.
var tableMetadataDescriptions = metav1.ObjectMeta{}.SwaggerDoc()

// tableDefaultColumns are the columns a CRD version without
// additionalPrinterColumns is served with (apiextensions-apiserver's
// serveDefaultColumnsIfEmpty).
func tableDefaultColumns() []CustomResourceColumnDefinition {
	return []CustomResourceColumnDefinition{{
		Name:        "Age",
		Type:        "date",
		Description: tableMetadataDescriptions["creationTimestamp"],
		JSONPath:    ".metadata.creationTimestamp",
	}}
}

// TableConvertor renders objects of one resource as a metav1.Table, the way
// kube-apiserver renders a custom resource for `kubectl get` (the
// apiextensions-apiserver table convertor followed by the apiserver's
// includeObject handling). It is safe for concurrent use.
type TableConvertor struct {
	// DropManagedFields removes metadata.managedFields from the
	// PartialObjectMetadata of rows (includeObject Metadata). kube-apiserver
	// keeps them, so the default (false) answers exactly like it; set it
	// before the first ConvertObjects to trade that fidelity for smaller
	// responses (kubectl does not read them).
	DropManagedFields bool

	// headers are the column definitions: Name, then one per column.
	headers []metav1.TableColumnDefinition
	// templates are the parsed JSONPath templates of the columns after Name.
	templates []string
	// paths pools *tablePaths: jsonpath.JSONPath keeps state while it
	// evaluates and is not safe for concurrent use.
	paths sync.Pool
}

// tablePaths is one set of parsed column paths with a scratch buffer.
type tablePaths struct {
	paths []*jsonpath.JSONPath
	buf   bytes.Buffer
}

// NewTableConvertor builds a convertor from a CRD version's
// additionalPrinterColumns. Without columns (nil or empty) it serves the
// default a CRD gets: Name and Age (from .metadata.creationTimestamp), which
// kubectl prints as "NAME   AGE".
//
// A column with an invalid JSONPath is an error. Like apiextensions-apiserver,
// which then logs and keeps serving, the returned convertor is still usable
// alongside the error: it has the Name column and the columns before the
// invalid one.
func NewTableConvertor(columns []CustomResourceColumnDefinition) (*TableConvertor, error) {
	if len(columns) == 0 {
		columns = tableDefaultColumns()
	}
	c := &TableConvertor{
		headers: make([]metav1.TableColumnDefinition, 1, 1+len(columns)),
	}
	c.headers[0] = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: tableMetadataDescriptions["name"]}
	for _, col := range columns {
		template := fmt.Sprintf("{%s}", col.JSONPath)
		if _, err := tableParsePath(col.Name, template); err != nil {
			return c, fmt.Errorf("unrecognized column definition %q", col.JSONPath)
		}
		desc := fmt.Sprintf("Custom resource definition column (in JSONPath format): %s", col.JSONPath)
		if len(col.Description) > 0 {
			desc = col.Description
		}
		c.templates = append(c.templates, template)
		c.headers = append(c.headers, metav1.TableColumnDefinition{
			Name:        col.Name,
			Type:        col.Type,
			Format:      col.Format,
			Description: desc,
			Priority:    col.Priority,
		})
	}
	return c, nil
}

func tableParsePath(name, template string) (*jsonpath.JSONPath, error) {
	path := jsonpath.New(name)
	if err := path.Parse(template); err != nil {
		return nil, err
	}
	path.AllowMissingKeys(true)
	return path, nil
}

// getPaths returns a set of column paths for the caller's exclusive use.
func (c *TableConvertor) getPaths() (*tablePaths, error) {
	if p, ok := c.paths.Get().(*tablePaths); ok {
		return p, nil
	}
	p := &tablePaths{paths: make([]*jsonpath.JSONPath, len(c.templates))}
	for i, template := range c.templates {
		path, err := tableParsePath(c.headers[i+1].Name, template)
		if err != nil { // parsed once already in NewTableConvertor
			return nil, err
		}
		p.paths[i] = path
	}
	return p, nil
}

// ConvertObjects renders objects, each the JSON of one object, as the JSON
// of a meta.k8s.io/v1 Table.
//
// listMeta is the metadata of the list the objects come from; nil renders a
// single object (a get or a watch event), whose resourceVersion becomes the
// table's. includeObject chooses each row's object: IncludeNone (null),
// IncludeMetadata or "" (a PartialObjectMetadata with the object's
// metadata; kubectl relies on it for namespaces, -A and -w) or
// IncludeObject (the object's JSON). Any other value is an error, which
// kube-apiserver answers as 400 Bad Request. noHeaders omits the column
// definitions (metav1.TableOptions.NoHeaders, set for watch events after the
// first). Dates are rendered as their age at now.
//
// An object that is not a JSON object is an error.
func (c *TableConvertor) ConvertObjects(objects [][]byte, listMeta *metav1.ListMeta, includeObject metav1.IncludeObjectPolicy, noHeaders bool, now time.Time) ([]byte, error) {
	switch includeObject {
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject, "":
	default:
		return nil, fmt.Errorf("unrecognized includeObject value: %q", includeObject)
	}

	table := metav1.Table{
		TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: metav1.SchemeGroupVersion.String()},
		Rows:     make([]metav1.TableRow, 0, len(objects)),
	}
	if !noHeaders {
		table.ColumnDefinitions = c.headers
	}
	if listMeta != nil {
		table.ResourceVersion = listMeta.ResourceVersion
		table.Continue = listMeta.Continue
		table.RemainingItemCount = listMeta.RemainingItemCount
	}

	paths, err := c.getPaths()
	if err != nil {
		return nil, err
	}
	healthy := true
	for i, raw := range objects {
		row, ok, err := c.convertObject(raw, paths, includeObject, now)
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		healthy = healthy && ok
		if listMeta == nil && len(objects) == 1 {
			table.ResourceVersion = row.resourceVersion
		}
		table.Rows = append(table.Rows, row.TableRow)
	}
	if healthy {
		c.paths.Put(paths)
	}
	return json.Marshal(&table)
}

type tableRow struct {
	metav1.TableRow
	resourceVersion string
}

var errTableObjectNotJSONObject = errors.New("not a JSON object")

// convertObject renders one object. ok is false when a column path failed
// and its state can no longer be trusted.
func (c *TableConvertor) convertObject(raw []byte, paths *tablePaths, includeObject metav1.IncludeObjectPolicy, now time.Time) (row tableRow, ok bool, err error) {
	// The decoding of the apiserver's unstructured scheme: integers as int64,
	// other numbers as float64.
	var content map[string]interface{}
	if err := utiljson.Unmarshal(raw, &content); err != nil {
		return row, false, err
	}
	if content == nil {
		return row, false, errTableObjectNotJSONObject
	}
	u := &unstructured.Unstructured{Object: content}

	ok = true
	cells := make([]interface{}, 1, len(c.headers))
	cells[0] = u.GetName()
	for i, path := range paths.paths {
		results, err := path.FindResults(content)
		if err != nil {
			ok = false
		}
		if err != nil || len(results) == 0 || len(results[0]) == 0 {
			cells = append(cells, nil)
			continue
		}
		// Simple JSON paths have at most one result.
		value := results[0][0].Interface()
		if typ := c.headers[i+1].Type; typ == "string" {
			if err := path.PrintResults(&paths.buf, []reflect.Value{reflect.ValueOf(value)}); err == nil {
				cells = append(cells, paths.buf.String())
			} else {
				cells = append(cells, nil)
			}
			paths.buf.Reset()
		} else {
			cells = append(cells, tableCellForJSONValue(typ, value, now))
		}
	}
	row.Cells = cells
	row.resourceVersion = u.GetResourceVersion()

	switch {
	case includeObject == metav1.IncludeObject:
		row.Object.Raw = raw
	case includeObject == metav1.IncludeMetadata, includeObject == "",
		u.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true":
		partial := meta.AsPartialObjectMetadata(u)
		partial.GetObjectKind().SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata"))
		if c.DropManagedFields {
			partial.ManagedFields = nil
		}
		row.Object.Object = partial
	default: // IncludeNone
		row.Object = runtime.RawExtension{}
	}
	return row, ok, nil
}

// tableCellForJSONValue is apiextensions-apiserver's cellForJSONValue with
// ages computed against now.
func tableCellForJSONValue(headerType string, value interface{}, now time.Time) interface{} {
	if value == nil {
		return nil
	}

	switch headerType {
	case "integer":
		switch typed := value.(type) {
		case int64:
			return typed
		case float64:
			return int64(typed)
		case json.Number:
			if i64, err := typed.Int64(); err == nil {
				return i64
			}
		}
	case "number":
		switch typed := value.(type) {
		case int64:
			return float64(typed)
		case float64:
			return typed
		case json.Number:
			if f, err := typed.Float64(); err == nil {
				return f
			}
		}
	case "boolean":
		if b, ok := value.(bool); ok {
			return b
		}
	case "string":
		if s, ok := value.(string); ok {
			return s
		}
	case "date":
		if typed, ok := value.(string); ok {
			var timestamp metav1.Time
			err := timestamp.UnmarshalQueryParameter(typed)
			if err != nil {
				return "<invalid>"
			}
			if timestamp.IsZero() {
				return "<unknown>"
			}
			return duration.HumanDuration(now.Sub(timestamp.Time))
		}
	}

	return nil
}
