package inbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// filled returns e with every field set to a value derived from i (so that
// a field added to CacheEntry and not to appendCacheFile shows up).
func filled(t *testing.T, i int, s string) CacheEntry {
	var e CacheEntry
	v := reflect.ValueOf(&e).Elem()
	for f := range v.NumField() {
		switch fv := v.Field(f); fv.Kind() {
		case reflect.String:
			fv.SetString(fmt.Sprintf("%s%d", s, f))
		case reflect.Int64:
			fv.SetInt(int64(i*1000+f) - 7)
		case reflect.Bool:
			fv.SetBool(true)
		default:
			t.Fatalf("CacheEntry.%s: kind %s not covered by this test", v.Type().Field(f).Name, fv.Kind())
		}
	}
	return e
}

func TestCacheEncodingMatchesJSON(t *testing.T) {
	odd := []string{"plain", "a\"quote", "back\\slash", "<html>&amp;", "tab\there\nnl\r\b\f\x01\x1f\x7f",
		"caf\u00e9 \u65e5\u672c", "bad\xff\xfeutf8", "ls\u2028ps\u2029", "", "/d/f.bin"}
	cases := map[string]cacheFile{
		"empty":      {Version: cacheVersion, Files: map[string]CacheEntry{}},
		"dirs only":  {Version: cacheVersion, Files: map[string]CacheEntry{}, Dirs: []string{"a", "a/b<c"}},
		"zero entry": {Version: cacheVersion, Files: map[string]CacheEntry{"/x": {}}},
		"minimal":    {Version: cacheVersion, Files: map[string]CacheEntry{"/x": {Size: 3, MTime: -5, SHA1: "AB"}}},
	}
	all := cacheFile{Version: cacheVersion, Files: map[string]CacheEntry{}, Dirs: []string{"d", "d/e\u00e9"}}
	for i, s := range odd {
		all.Files["/"+s+fmt.Sprint(i)] = filled(t, i, s)
		e := filled(t, i, s)
		e.Installed, e.Origin, e.Link = false, "", ""
		all.Files["/partly/"+s+fmt.Sprint(i)] = e
	}
	cases["all fields, odd strings"] = all
	for name, cf := range cases {
		want, err := json.MarshalIndent(cf, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		var files []*cacheItem
		for k, v := range cf.Files {
			files = append(files, &cacheItem{k, v})
		}
		slices.SortFunc(files, func(a, b *cacheItem) int { return strings.Compare(a.path, b.path) })
		got := appendCacheFile(nil, files, cf.Dirs)
		if string(got) != string(want) {
			t.Errorf("%s: appendCacheFile differs from encoding/json:\ngot:\n%s\nwant:\n%s", name, got, want)
		}
		var back cacheFile
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSaveCacheRoundTrip: what SaveCache writes, a new Open reads back.
func TestSaveCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ib, err := OpenOptions(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]CacheEntry{}
	for i := range 300 {
		vp := fmt.Sprintf("/d%02d/f\u00e9<%03d>.bin", i%7, i)
		e := CacheEntry{Size: int64(i), MTime: int64(i) * 1e9, SHA1: strings.Repeat("AB", 20), Installed: i%2 == 0}
		if i%3 == 0 {
			e.Origin = "/srv/\"x\""
		}
		ib.remember(vp, e)
		want[vp] = e
	}
	ib.mu.Lock()
	ib.made["d01"] = true
	ib.dirty = true
	ib.mu.Unlock()
	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	ib2, err := OpenOptions(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ib2.Close()
	for vp, e := range want {
		if got, ok := ib2.Cached(vp); !ok || got != e {
			t.Fatalf("%q: got %+v %v, want %+v", vp, got, ok, e)
		}
	}
	if n := len(ib2.cache); n != len(want) {
		t.Errorf("%d entries read back, want %d", n, len(want))
	}
	if !ib2.made["d01"] {
		t.Errorf("made directories not read back: %v", ib2.made)
	}
}

func BenchmarkSaveCache10k(b *testing.B) {
	ib, err := OpenOptions(b.TempDir(), Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer ib.Close()
	for i := range 10000 {
		ib.cache[fmt.Sprintf("/d%03d/f%05d.bin", i/100, i)] = CacheEntry{Size: 4096, MTime: 1700000000123456789,
			SHA1: "0123456789ABCDEF0123456789ABCDEF01234567", Installed: true, Origin: "/srv/data"}
	}
	b.ReportAllocs()
	for b.Loop() {
		ib.mu.Lock()
		ib.dirty = true
		ib.mu.Unlock()
		if err := ib.SaveCache(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEndedErrorText: the error a partial keeps once ended reads as the
// fmt.Errorf it replaces and is ErrFinished.
func TestEndedErrorText(t *testing.T) {
	for _, how := range []string{"finished", "aborted", "deleted by the server during the transfer"} {
		vp := "/d/\"odd\"\tname\u00e9"
		var err error = &endedError{vp, how}
		if want := fmt.Errorf("%w: %q "+how, ErrFinished, vp).Error(); err.Error() != want {
			t.Errorf("got %q, want %q", err.Error(), want)
		}
		if !errors.Is(err, ErrFinished) {
			t.Errorf("%v is not ErrFinished", err)
		}
	}
}
