package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// The expectations below are the structures kube-apiserver 1.36 builds for
// a custom resource (apiextensions-apiserver's table convertor, then the
// apiserver's includeObject handling), written out by hand.

var (
	tableTestNow     = time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	tableTestCreated = tableTestNow.Add(-5 * time.Minute)
	tableTestDocs    = metav1.ObjectMeta{}.SwaggerDoc()

	tableTestNameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: tableTestDocs["name"]}
	tableTestAgeColumn  = metav1.TableColumnDefinition{Name: "Age", Type: "date", Description: tableTestDocs["creationTimestamp"]}
)

// tableTestObject is a Widget with full metadata, spec fields of every
// printer column type and managedFields.
var tableTestObject = fmt.Sprintf(`{
  "apiVersion": "example.com/v1",
  "kind": "Widget",
  "metadata": {
    "name": "w1",
    "namespace": "ns1",
    "uid": "9b2d8b36-6b58-4c64-9d8f-4f3c8e1f0a01",
    "resourceVersion": "11",
    "generation": 2,
    "creationTimestamp": %q,
    "labels": {"app": "a"},
    "annotations": {"note": "x"},
    "finalizers": ["example.com/f"],
    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "5c1f6f0e-1111-2222-3333-444455556666"}],
    "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "example.com/v1", "time": %[1]q, "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
  },
  "spec": {
    "str": "hello",
    "int": 42,
    "float": 3.7,
    "num": 2.5,
    "bool": true,
    "big": 10000000000,
    "when": %q,
    "future": "2999-01-01T00:00:00Z",
    "notADate": "yesterday",
    "obj": {"a": 1, "b": ["x", "y"]},
    "list": ["a", "b", "c"],
    "nul": null
  },
  "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}
}`, tableTestCreated.Format(time.RFC3339), tableTestNow.Add(-(3*24*time.Hour + 5*time.Hour)).Format(time.RFC3339))

// tableTestObject2 has little metadata and integers where the first has
// floats, and the other way around.
var tableTestObject2 = fmt.Sprintf(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2","namespace":"ns2","resourceVersion":"12","creationTimestamp":%q},"spec":{"int":7.0,"float":3,"num":3,"bool":false}}`,
	tableTestNow.Add(-90*time.Second).Format(time.RFC3339))

// tableTestPartial is the PartialObjectMetadata kube-apiserver puts in a
// row of tableTestObject for includeObject Metadata: every metadata field,
// managedFields included.
func tableTestPartial() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              "w1",
			Namespace:         "ns1",
			UID:               types.UID("9b2d8b36-6b58-4c64-9d8f-4f3c8e1f0a01"),
			ResourceVersion:   "11",
			Generation:        2,
			CreationTimestamp: metav1.NewTime(tableTestCreated),
			Labels:            map[string]string{"app": "a"},
			Annotations:       map[string]string{"note": "x"},
			Finalizers:        []string{"example.com/f"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "5c1f6f0e-1111-2222-3333-444455556666"}},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "example.com/v1",
				Time: &metav1.Time{Time: tableTestCreated}, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)},
			}},
		},
	}
}

func tableTestPartial2() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              "w2",
			Namespace:         "ns2",
			ResourceVersion:   "12",
			CreationTimestamp: metav1.NewTime(tableTestNow.Add(-90 * time.Second)),
		},
	}
}

func tableTestRow(obj runtime.Object, cells ...interface{}) metav1.TableRow {
	return metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}}
}

var tableTestColumns = []CustomResourceColumnDefinition{
	{Name: "Str", Type: "string", JSONPath: ".spec.str"},
	{Name: "Int", Type: "integer", JSONPath: ".spec.int", Description: "an integer"},
	{Name: "IntFromFloat", Type: "integer", JSONPath: ".spec.float"},
	{Name: "Num", Type: "number", Format: "double", JSONPath: ".spec.num"},
	{Name: "Bool", Type: "boolean", JSONPath: ".spec.bool", Priority: 1},
	{Name: "When", Type: "date", JSONPath: ".spec.when"},
	{Name: "Future", Type: "date", JSONPath: ".spec.future", Priority: 2},
	{Name: "NotADate", Type: "date", JSONPath: ".spec.notADate"},
	{Name: "Missing", Type: "string", JSONPath: ".spec.missing"},
	{Name: "MissingInt", Type: "integer", JSONPath: ".status.nothing.deeper"},
	{Name: "StrFromInt", Type: "string", JSONPath: ".spec.big"},
	{Name: "StrFromObj", Type: "string", JSONPath: ".spec.obj"},
	{Name: "StrFromNull", Type: "string", JSONPath: ".spec.nul"},
	{Name: "Second", Type: "string", JSONPath: ".spec.list[1]"},
	{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`},
	{Name: "App", Type: "string", JSONPath: ".metadata.labels.app"},
	{Name: "IntFromStr", Type: "integer", JSONPath: ".spec.str"},
}

func tableTestColumnDefinitions() []metav1.TableColumnDefinition {
	d := func(path string) string {
		return "Custom resource definition column (in JSONPath format): " + path
	}
	return []metav1.TableColumnDefinition{
		tableTestNameColumn,
		{Name: "Str", Type: "string", Description: d(".spec.str")},
		{Name: "Int", Type: "integer", Description: "an integer"},
		{Name: "IntFromFloat", Type: "integer", Description: d(".spec.float")},
		{Name: "Num", Type: "number", Format: "double", Description: d(".spec.num")},
		{Name: "Bool", Type: "boolean", Description: d(".spec.bool"), Priority: 1},
		{Name: "When", Type: "date", Description: d(".spec.when")},
		{Name: "Future", Type: "date", Description: d(".spec.future"), Priority: 2},
		{Name: "NotADate", Type: "date", Description: d(".spec.notADate")},
		{Name: "Missing", Type: "string", Description: d(".spec.missing")},
		{Name: "MissingInt", Type: "integer", Description: d(".status.nothing.deeper")},
		{Name: "StrFromInt", Type: "string", Description: d(".spec.big")},
		{Name: "StrFromObj", Type: "string", Description: d(".spec.obj")},
		{Name: "StrFromNull", Type: "string", Description: d(".spec.nul")},
		{Name: "Second", Type: "string", Description: d(".spec.list[1]")},
		{Name: "Ready", Type: "string", Description: d(`.status.conditions[?(@.type=="Ready")].status`)},
		{Name: "App", Type: "string", Description: d(".metadata.labels.app")},
		{Name: "IntFromStr", Type: "integer", Description: d(".spec.str")},
	}
}

func TestTableConvertorConvertObjects(t *testing.T) {
	remaining := int64(3)
	tableOf := func(rv string, columns []metav1.TableColumnDefinition, rows ...metav1.TableRow) metav1.Table {
		return metav1.Table{
			TypeMeta:          metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
			ListMeta:          metav1.ListMeta{ResourceVersion: rv},
			ColumnDefinitions: columns,
			Rows:              append([]metav1.TableRow{}, rows...),
		}
	}
	defaultColumns := []metav1.TableColumnDefinition{tableTestNameColumn, tableTestAgeColumn}
	// cells of tableTestObject and tableTestObject2 under tableTestColumns.
	// An explicit null in a string column prints as "<no value>" (client-go
	// jsonpath on a nil value), as in kube-apiserver, though objects served
	// by kube-apiserver rarely keep nulls.
	cells1 := []interface{}{"w1", "hello", int64(42), int64(3), 2.5, true, "3d5h", "<invalid>", "<invalid>", nil, nil, "10000000000", `{"a":1,"b":["x","y"]}`, "<no value>", "b", "True", "a", nil}
	cells2 := []interface{}{"w2", nil, int64(7), int64(3), float64(3), false, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}

	tests := []struct {
		name      string
		columns   []CustomResourceColumnDefinition
		drop      bool
		objects   []string
		listMeta  *metav1.ListMeta
		include   metav1.IncludeObjectPolicy
		noHeaders bool
		want      metav1.Table
	}{{
		name:    "default columns, one object",
		objects: []string{tableTestObject},
		want:    tableOf("11", defaultColumns, tableTestRow(tableTestPartial(), "w1", "5m")),
	}, {
		name:    "empty columns are the default",
		columns: []CustomResourceColumnDefinition{},
		objects: []string{tableTestObject2},
		want:    tableOf("12", defaultColumns, tableTestRow(tableTestPartial2(), "w2", "90s")),
	}, {
		name:     "default columns, list",
		objects:  []string{tableTestObject, tableTestObject2},
		listMeta: &metav1.ListMeta{ResourceVersion: "20"},
		include:  metav1.IncludeMetadata,
		want: tableOf("20", defaultColumns,
			tableTestRow(tableTestPartial(), "w1", "5m"),
			tableTestRow(tableTestPartial2(), "w2", "90s")),
	}, {
		name:     "printer columns of every type, missing fields and priorities",
		columns:  tableTestColumns,
		objects:  []string{tableTestObject, tableTestObject2},
		listMeta: &metav1.ListMeta{ResourceVersion: "20"},
		want: tableOf("20", tableTestColumnDefinitions(),
			tableTestRow(tableTestPartial(), cells1...),
			tableTestRow(tableTestPartial2(), cells2...)),
	}, {
		name:     "list meta carried, includeObject None",
		objects:  []string{tableTestObject},
		listMeta: &metav1.ListMeta{ResourceVersion: "20", Continue: "token", RemainingItemCount: &remaining, SelfLink: "/ignored"},
		include:  metav1.IncludeNone,
		want: func() metav1.Table {
			tbl := tableOf("20", defaultColumns, metav1.TableRow{Cells: []interface{}{"w1", "5m"}})
			tbl.Continue = "token"
			tbl.RemainingItemCount = &remaining
			return tbl
		}(),
	}, {
		name:     "empty list has empty rows",
		objects:  nil,
		listMeta: &metav1.ListMeta{ResourceVersion: "20"},
		want:     tableOf("20", defaultColumns),
	}, {
		name:    "includeObject Object embeds the object",
		objects: []string{tableTestObject},
		include: metav1.IncludeObject,
		want: tableOf("11", defaultColumns, metav1.TableRow{
			Cells:  []interface{}{"w1", "5m"},
			Object: runtime.RawExtension{Raw: []byte(tableTestObject)},
		}),
	}, {
		name:    "includeObject Metadata",
		columns: tableTestColumns,
		objects: []string{tableTestObject},
		include: metav1.IncludeMetadata,
		want:    tableOf("11", tableTestColumnDefinitions(), tableTestRow(tableTestPartial(), cells1...)),
	}, {
		name:    "DropManagedFields",
		drop:    true,
		objects: []string{tableTestObject},
		want: func() metav1.Table {
			partial := tableTestPartial()
			partial.ManagedFields = nil
			return tableOf("11", defaultColumns, tableTestRow(partial, "w1", "5m"))
		}(),
	}, {
		name:      "noHeaders",
		objects:   []string{tableTestObject2},
		noHeaders: true,
		want:      tableOf("12", nil, tableTestRow(tableTestPartial2(), "w2", "90s")),
	}, {
		name:     "several objects without list meta: no resourceVersion",
		objects:  []string{tableTestObject, tableTestObject2},
		include:  metav1.IncludeNone,
		want:     tableOf("", defaultColumns, metav1.TableRow{Cells: []interface{}{"w1", "5m"}}, metav1.TableRow{Cells: []interface{}{"w2", "90s"}}),
		listMeta: nil,
	}, {
		name:    "initial-events-end bookmark keeps its metadata with includeObject None",
		objects: []string{`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"resourceVersion":"30","annotations":{"k8s.io/initial-events-end":"true"}}}`},
		include: metav1.IncludeNone,
		want: tableOf("30", defaultColumns, tableTestRow(&metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{ResourceVersion: "30", Annotations: map[string]string{"k8s.io/initial-events-end": "true"}},
		}, "", nil)),
	}, {
		name:    "missing creationTimestamp",
		objects: []string{`{"metadata":{"name":"x"}}`},
		want: tableOf("", defaultColumns, tableTestRow(&metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "x"},
		}, "x", nil)),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewTableConvertor(tc.columns)
			if err != nil {
				t.Fatal(err)
			}
			c.DropManagedFields = tc.drop
			objects := make([][]byte, len(tc.objects))
			for i, o := range tc.objects {
				objects[i] = []byte(o)
			}
			got, err := c.ConvertObjects(objects, tc.listMeta, tc.include, tc.noHeaders, tableTestNow)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := tableTestDecode(t, got), tableTestDecode(t, want); !reflect.DeepEqual(g, w) {
				t.Errorf("table differs\n got: %s\nwant: %s", got, want)
			}
			// It is a meta.k8s.io/v1 Table to a client.
			var table metav1.Table
			if err := json.Unmarshal(got, &table); err != nil {
				t.Fatal(err)
			}
			if table.Kind != "Table" || table.APIVersion != "meta.k8s.io/v1" || len(table.Rows) != len(objects) {
				t.Errorf("decoded %s %s with %d rows", table.APIVersion, table.Kind, len(table.Rows))
			}
			for _, row := range table.Rows {
				if len(row.Cells) != len(tc.want.Rows[0].Cells) {
					t.Errorf("row has %d cells, want %d", len(row.Cells), len(tc.want.Rows[0].Cells))
				}
			}
		})
	}
}

// TestTableConvertorJSONShape pins details of the encoding kube-apiserver
// produces and clients see.
func TestTableConvertorJSONShape(t *testing.T) {
	c, err := NewTableConvertor(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		objects   []string
		listMeta  *metav1.ListMeta
		include   metav1.IncludeObjectPolicy
		noHeaders bool
		contains  []string
	}{
		{"no headers is null", []string{tableTestObject2}, nil, "", true, []string{`"columnDefinitions":null`}},
		{"empty list rows are []", nil, &metav1.ListMeta{ResourceVersion: "1"}, "", false, []string{`"rows":[]`, `"metadata":{"resourceVersion":"1"}`}},
		{"object None is null", []string{tableTestObject2}, nil, metav1.IncludeNone, false, []string{`"object":null`}},
		{"column definition", []string{tableTestObject2}, nil, "", false, []string{`{"name":"Age","type":"date","format":"","description":"CreationTimestamp is`}},
		{"object verbatim and compact", []string{"{ \"metadata\": {\"name\": \"a\"},\n \"z\": 1, \"a\": 2 }"}, nil, metav1.IncludeObject, false, []string{`"object":{"metadata":{"name":"a"},"z":1,"a":2}`}},
		{"partial object metadata", []string{tableTestObject2}, nil, metav1.IncludeMetadata, false, []string{`"object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"w2","namespace":"ns2","resourceVersion":"12","creationTimestamp":"2026-05-04T03:00:31Z"}}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objects := make([][]byte, len(tc.objects))
			for i, o := range tc.objects {
				objects[i] = []byte(o)
			}
			got, err := c.ConvertObjects(objects, tc.listMeta, tc.include, tc.noHeaders, tableTestNow)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.contains {
				if !bytes.Contains(got, []byte(s)) {
					t.Errorf("output lacks %s\n%s", s, got)
				}
			}
		})
	}
}

func TestTableConvertorAges(t *testing.T) {
	c, err := NewTableConvertor([]CustomResourceColumnDefinition{{Name: "T", Type: "date", JSONPath: ".t"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		value string
		want  interface{}
	}{
		{`"` + tableTestNow.Add(-5*time.Minute).Format(time.RFC3339) + `"`, "5m"},
		{`"` + tableTestNow.Add(-10*time.Second).Format(time.RFC3339) + `"`, "10s"},
		{`"` + tableTestNow.Add(-26*time.Hour).Format(time.RFC3339) + `"`, "26h"},
		{`"` + tableTestNow.Add(-400*24*time.Hour).Format(time.RFC3339) + `"`, "400d"},
		{`"` + tableTestNow.Add(-5*time.Minute).In(time.FixedZone("X", 7200)).Format(time.RFC3339) + `"`, "5m"},
		{`"` + tableTestNow.Add(time.Hour).Format(time.RFC3339) + `"`, "<invalid>"},
		{`"` + tableTestNow.Format(time.RFC3339) + `"`, "0s"},
		{`"2026-05-04"`, "<invalid>"},
		{`""`, "<unknown>"},
		{`"0001-01-01T00:00:00Z"`, "<unknown>"},
		{`12`, nil},
		{`null`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, err := c.ConvertObjects([][]byte{[]byte(`{"metadata":{"name":"n"},"t":` + tc.value + `}`)}, nil, metav1.IncludeNone, true, tableTestNow)
			if err != nil {
				t.Fatal(err)
			}
			var table metav1.Table
			if err := json.Unmarshal(got, &table); err != nil {
				t.Fatal(err)
			}
			if cell := table.Rows[0].Cells[1]; !reflect.DeepEqual(cell, tc.want) {
				t.Errorf("cell %#v, want %#v", cell, tc.want)
			}
		})
	}
}

func TestTableConvertorErrors(t *testing.T) {
	c, err := NewTableConvertor(tableTestColumns)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		objects []string
		include metav1.IncludeObjectPolicy
		want    string
	}{
		{"truncated JSON", []string{tableTestObject2, `{"metadata":{"name":`}, "", "object 1: "},
		{"not JSON", []string{`metadata: {}`}, "", "object 0: "},
		{"array", []string{`[{"metadata":{}}]`}, "", "object 0: "},
		{"string", []string{`"x"`}, "", "object 0: "},
		{"number", []string{`42`}, "", "object 0: "},
		{"null", []string{`null`}, "", "object 0: not a JSON object"},
		{"empty", []string{``}, "", "object 0: "},
		{"trailing data", []string{`{} {}`}, "", "object 0: "},
		{"unknown includeObject", []string{tableTestObject2}, "Everything", `unrecognized includeObject value: "Everything"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objects := make([][]byte, len(tc.objects))
			for i, o := range tc.objects {
				objects[i] = []byte(o)
			}
			got, err := c.ConvertObjects(objects, nil, tc.include, false, tableTestNow)
			if err == nil {
				t.Fatalf("no error; output %s", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// The convertor still works after errors.
	if _, err := c.ConvertObjects([][]byte{[]byte(tableTestObject)}, nil, "", false, tableTestNow); err != nil {
		t.Fatal(err)
	}
}

func TestNewTableConvertorInvalidJSONPath(t *testing.T) {
	columns := []CustomResourceColumnDefinition{
		{Name: "Good", Type: "string", JSONPath: ".spec.str"},
		{Name: "Bad", Type: "string", JSONPath: ".spec[("},
		{Name: "After", Type: "string", JSONPath: ".spec.after"},
	}
	c, err := NewTableConvertor(columns)
	if err == nil || err.Error() != `unrecognized column definition ".spec[("` {
		t.Fatalf("error %v, want unrecognized column definition", err)
	}
	// Like apiextensions-apiserver, the convertor is usable: Name and the
	// columns before the invalid one.
	got, err := c.ConvertObjects([][]byte{[]byte(tableTestObject)}, nil, metav1.IncludeNone, false, tableTestNow)
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(got, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.ColumnDefinitions) != 2 || table.ColumnDefinitions[1].Name != "Good" || !reflect.DeepEqual(table.Rows[0].Cells, []interface{}{"w1", "hello"}) {
		t.Errorf("fallback table %s", got)
	}
}

// TestTableConvertorConcurrent runs conversions in parallel: the column
// paths keep state while they evaluate, so -race checks they are not shared.
func TestTableConvertorConcurrent(t *testing.T) {
	c, err := NewTableConvertor(tableTestColumns)
	if err != nil {
		t.Fatal(err)
	}
	objects := [][]byte{[]byte(tableTestObject), []byte(tableTestObject2)}
	want, err := c.ConvertObjects(objects, &metav1.ListMeta{ResourceVersion: "1"}, "", false, tableTestNow)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := c.ConvertObjects(objects, &metav1.ListMeta{ResourceVersion: "1"}, "", false, tableTestNow)
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, want) {
					t.Errorf("concurrent conversion differs:\n%s\n%s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkTableConvertor(b *testing.B) {
	c, err := NewTableConvertor(tableTestColumns)
	if err != nil {
		b.Fatal(err)
	}
	objects := make([][]byte, 500)
	for i := range objects {
		objects[i] = []byte(tableTestObject)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ConvertObjects(objects, &metav1.ListMeta{ResourceVersion: "1"}, metav1.IncludeMetadata, false, tableTestNow); err != nil {
			b.Fatal(err)
		}
	}
}

// tableTestDecode decodes JSON generically, numbers kept as written.
func tableTestDecode(t *testing.T, data []byte) interface{} {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v interface{}
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return v
}
