package store

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestNewObject(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    Object
		wantErr string
	}{
		{
			name: "namespaced with labels",
			json: `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"a","namespace":"ns","uid":"u1","resourceVersion":"42","labels":{"k":"v","vcluster.com/owner-vcluster":"client"}},"spec":{"x":[1,2,{"y":"}"}]}}`,
			want: Object{Namespace: "ns", Name: "a", UID: "u1", ResourceVersion: 42, Labels: map[string]string{"k": "v", "vcluster.com/owner-vcluster": "client"}},
		},
		{
			name: "cluster-scoped, metadata last, whitespace",
			json: " {\n \"spec\" : {} ,\n \"metadata\" : { \"resourceVersion\" : \"7\" , \"name\" : \"c\" }\n}\n",
			want: Object{Name: "c", ResourceVersion: 7},
		},
		{
			name: "no resourceVersion is 0",
			json: `{"metadata":{"name":"a"}}`,
			want: Object{Name: "a"},
		},
		{name: "no metadata", json: `{"kind":"Thing"}`, wantErr: "no metadata"},
		{name: "no name", json: `{"metadata":{"generateName":"a-"}}`, wantErr: "no metadata.name"},
		{name: "field names are case-sensitive", json: `{"Metadata":{"name":"a"}}`, wantErr: "no metadata"},
		{name: "resourceVersion not a number", json: `{"metadata":{"name":"a","resourceVersion":"abc"}}`, wantErr: "not a decimal number"},
		{name: "resourceVersion negative", json: `{"metadata":{"name":"a","resourceVersion":"-1"}}`, wantErr: "not a decimal number"},
		{name: "resourceVersion as number", json: `{"metadata":{"name":"a","resourceVersion":5}}`, wantErr: "decode object metadata"},
		{name: "truncated", json: `{"metadata":{"name":"a"`, wantErr: "decode object metadata"},
		{name: "malformed outside metadata", json: `{"metadata":{"name":"a"},"spec":{"x":}}`, wantErr: "decode object metadata"},
		{name: "trailing garbage", json: `{"metadata":{"name":"a"}} x`, wantErr: "decode object metadata"},
		{name: "array", json: `[{"metadata":{"name":"a"}}]`, wantErr: "decode object metadata"},
		{name: "null", json: `null`, wantErr: "not a JSON object"},
		{name: "metadata null", json: `{"metadata":null}`, wantErr: "no metadata"},
		{name: "metadata not an object", json: `{"metadata":"x"}`, wantErr: "decode object metadata"},
		{name: "metadata key escaped", json: `{"m\u0065tadata":{"name":"a"}}`, want: Object{Name: "a"}},
		{name: "empty", json: ``, wantErr: "decode object metadata"},
		{name: "labels not strings", json: `{"metadata":{"name":"a","labels":{"k":1}}}`, wantErr: "decode object metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewObject([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewObject() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Namespace != tt.want.Namespace || got.Name != tt.want.Name || got.UID != tt.want.UID ||
				got.ResourceVersion != tt.want.ResourceVersion || !maps.Equal(got.Labels, tt.want.Labels) {
				t.Errorf("NewObject() = %+v, want %+v", got, tt.want)
			}
			if string(got.JSON) != tt.json {
				t.Errorf("JSON is not the input")
			}
		})
	}
}

func FuzzNewObject(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"a","namespace":"n","resourceVersion":"3","labels":{"a":"b"}}}`))
	f.Add([]byte(`{"metadata":{"name":"a","resourceVersion":"3"},"spec":{"a":"\"}"}}`))
	f.Add([]byte(`{"metadata":{"name":"a","resourc\u0065Version":"3"}}`))
	f.Add([]byte(`{"metadata":{"name":"a"}}`))
	f.Add([]byte(`{"metadata":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := NewObject(data)
		if err != nil {
			return
		}
		if o.Name == "" {
			t.Fatal("an object without a name was accepted")
		}
		tomb, ok := o.WithResourceVersion(o.ResourceVersion + 1)
		if !ok {
			return
		}
		back, err := NewObject(tomb.JSON)
		if err != nil {
			t.Fatalf("withResourceVersion produced invalid JSON %q from %q: %v", tomb.JSON, data, err)
		}
		if back.ResourceVersion != o.ResourceVersion+1 || back.Name != o.Name || back.Namespace != o.Namespace {
			t.Fatalf("withResourceVersion: got %v from %q", back, tomb.JSON)
		}
	})
}

func TestWithResourceVersion(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{
			name: "plain",
			in:   `{"kind":"T","metadata":{"name":"a","resourceVersion":"5"},"spec":{"metadata":{"resourceVersion":"9"}}}`,
			want: `{"kind":"T","metadata":{"name":"a","resourceVersion":"12"},"spec":{"metadata":{"resourceVersion":"9"}}}`,
			ok:   true,
		},
		{
			name: "nested decoys before metadata",
			in:   `{"spec":{"resourceVersion":"1","a":["metadata",{"metadata":{}}],"s":"\"metadata\":{"},"metadata":{"name":"a","labels":{"resourceVersion":"x"},"resourceVersion" : "5"}}`,
			want: `{"spec":{"resourceVersion":"1","a":["metadata",{"metadata":{}}],"s":"\"metadata\":{"},"metadata":{"name":"a","labels":{"resourceVersion":"x"},"resourceVersion" : "12"}}`,
			ok:   true,
		},
		{
			name: "escaped key",
			in:   `{"metadata":{"name":"a","resourc\u0065Version":"5"}}`,
			want: `{"metadata":{"name":"a","resourc\u0065Version":"12"}}`,
			ok:   true,
		},
		{
			name: "duplicate keys: the last wins, as in the decoder",
			in:   `{"metadata":{"name":"a","resourceVersion":"5"},"metadata":{"name":"a","resourceVersion":"6","resourceVersion":"7"}}`,
			want: `{"metadata":{"name":"a","resourceVersion":"5"},"metadata":{"name":"a","resourceVersion":"6","resourceVersion":"12"}}`,
			ok:   true,
		},
		{name: "no resourceVersion", in: `{"metadata":{"name":"a"}}`, want: `{"metadata":{"name":"a"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := NewObject([]byte(tt.in))
			mustNil(t, err)
			got, ok := in.WithResourceVersion(12)
			if ok != tt.ok || string(got.JSON) != tt.want || got.ResourceVersion != 12 {
				t.Errorf("withResourceVersion = %s (%d), %v; want %s, %v", got.JSON, got.ResourceVersion, ok, tt.want, tt.ok)
			}
			if string(in.JSON) != tt.in {
				t.Error("the original was modified")
			}
			if !json.Valid(got.JSON) {
				t.Error("invalid JSON")
			}
		})
	}
}

func TestCompareKeysIsKeyStringOrder(t *testing.T) {
	parts := []string{"", "a", "a-b", "a.b", "a0", "ab", "b", "a-", "z"}
	sign := func(x int) int { return min(max(x, -1), 1) }
	for _, ans := range parts {
		for _, an := range parts[1:] {
			for _, bns := range parts {
				for _, bn := range parts[1:] {
					want := strings.Compare(ans+"/"+an, bns+"/"+bn)
					if got := sign(compareKeys(ans, an, bns, bn)); got != want {
						t.Fatalf("compareKeys(%q,%q,%q,%q) = %d, want %d", ans, an, bns, bn, got, want)
					}
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, r.IntN(4))
		for i := range b {
			b[i] = "-./0ab"[r.IntN(6)]
		}
		return string(b)
	}
	for range 100000 {
		ans, an, bns, bn := word(), word(), word(), word()
		if got, want := sign(compareKeys(ans, an, bns, bn)), strings.Compare(ans+"/"+an, bns+"/"+bn); got != want {
			t.Fatalf("compareKeys(%q,%q,%q,%q) = %d, want %d", ans, an, bns, bn, got, want)
		}
	}
}

func TestObjectValidate(t *testing.T) {
	for _, o := range []*Object{nil, {}, {Name: "a/b"}, {Namespace: "n/s", Name: "a"}} {
		if err := o.validate(); err == nil {
			t.Errorf("validate(%v) = nil, want an error", o)
		}
	}
	c := newTestCache(t, Options{})
	if err := c.Add(&Object{Name: "a/b", ResourceVersion: 1}); err == nil {
		t.Error("Add of an invalid object succeeded")
	}
	if err := c.Replace([]*Object{nil}, 1); err == nil {
		t.Error("Replace with a nil object succeeded")
	}
}
