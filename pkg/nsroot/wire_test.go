package nsroot

import (
	"reflect"
	"testing"
)

// fill sets every exported field of v (a pointer) to a value other than
// its zero one, recursively: a field the encoding forgets then shows.
func fill(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fill(t, v.Field(i), path+"."+f.Name)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(t, v.Index(0), path+"[0]")
		fill(t, v.Index(1), path+"[1]")
	case reflect.String:
		v.SetString(path + "\xff")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(-7)
	case reflect.Uint64:
		v.SetUint(1<<63 + 5)
	default:
		t.Fatalf("%s: the test does not know how to fill a %s", path, v.Kind())
	}
}

func TestWireCarriesEveryField(t *testing.T) {
	var p childRequest
	fill(t, reflect.ValueOf(&p).Elem(), "childRequest")
	var got childRequest
	if err := got.decode(p.encode()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("a field is lost on the way:\n got %+v\nwant %+v", got, p)
	}

	var q builderRequest
	fill(t, reflect.ValueOf(&q).Elem(), "builderRequest")
	var q2 builderRequest
	if err := q2.decode(q.encode()); err != nil || !reflect.DeepEqual(q2, q) {
		t.Errorf("builder request: %v\n got %+v\nwant %+v", err, q2, q)
	}
	var res builderResult
	fill(t, reflect.ValueOf(&res).Elem(), "builderResult")
	var res2 builderResult
	if err := res2.decode(res.encode()); err != nil || !reflect.DeepEqual(res2, res) {
		t.Errorf("builder result: %v\n got %+v\nwant %+v", err, res2, res)
	}
}

func TestWireRefusesBadData(t *testing.T) {
	var p childRequest
	fill(t, reflect.ValueOf(&p).Elem(), "childRequest")
	data := p.encode()
	for _, bad := range [][]byte{data[:len(data)-1], append(append([]byte{}, data...), 0), {0xff, 0xff, 0xff}, nil} {
		var got childRequest
		if err := got.decode(bad); err == nil {
			t.Errorf("decoding %d bytes of bad data succeeded", len(bad))
		}
	}
}
