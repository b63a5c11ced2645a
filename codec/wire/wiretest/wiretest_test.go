package wiretest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/nom"
)

// recorder is a testing.TB that collects failures instead of failing.
type recorder struct {
	testing.TB
	errs  []string
	fatal bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatal(args ...any) {
	r.errs = append(r.errs, fmt.Sprint(args...))
	r.fatal = true
	runtime.Goexit()
}

// run calls f with a recorder on its own goroutine, so Fatal can stop it.
func run(f func(tb testing.TB)) *recorder {
	r := &recorder{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f(r)
	}()
	wg.Wait()
	return r
}

func TestGolden(t *testing.T) {
	good := []Example{
		{Name: "HUGZ", Msg: func() codec.Message { return &nom.Hugz{} }, Wire: "aaa006"},
		{Name: "WTF", Msg: func() codec.Message { return &nom.Wtf{Reason: "no", Code: 400} }, Wire: "aaa003026e6f0190"},
	}
	if r := run(func(tb testing.TB) { Golden(tb, nom.Decode, good) }); len(r.errs) != 0 {
		t.Errorf("good vectors fail: %q", r.errs)
	}
	for _, tt := range []struct {
		name string
		ex   []Example
		want string
	}{
		{"none", nil, "the model has no golden vectors"},
		{"bytes", []Example{{Name: "WTF", Msg: func() codec.Message { return &nom.Wtf{Reason: "no", Code: 401} }, Wire: "aaa003026e6f0190"}}, "WTF: Append\n got AA A0 03 02 6E 6F 01 91\nwant AA A0 03 02 6E 6F 01 90"},
		{"length", []Example{{Name: "WTF", Msg: func() codec.Message { return &nom.Wtf{Reason: "no!", Code: 400} }, Wire: "aaa003026e6f0190"}}, "WTF: Length() = 9, want 8"},
		{"trailing", []Example{{Name: "HUGZ", Msg: func() codec.Message { return &nom.Hugz{} }, Wire: "aaa00600"}}, "HUGZ: Length() = 3, want 4"},
		{"hex", []Example{{Name: "HUGZ", Msg: func() codec.Message { return &nom.Hugz{} }, Wire: "zz"}}, "encoding/hex: invalid byte"},
		{"append", []Example{{Name: "WTF", Msg: func() codec.Message { return &nom.Wtf{Reason: strings.Repeat("x", 256)} }, Wire: "aaa003"}}, "WTF: Append: nom: bad value in WTF.reason"},
	} {
		r := run(func(tb testing.TB) { Golden(tb, nom.Decode, tt.ex) })
		if len(r.errs) == 0 || !strings.Contains(strings.Join(r.errs, "\n"), tt.want) {
			t.Errorf("%s: errors %q, want one with %q", tt.name, r.errs, tt.want)
		}
	}
	// A frame that encodes right but decodes to another message.
	lying := func(frame []byte, lim *codec.Limits) (codec.Message, error) { return &nom.HugzOk{}, nil }
	r := run(func(tb testing.TB) { Golden(tb, lying, good[:1]) })
	if len(r.errs) != 1 || !strings.HasPrefix(r.errs[0], "HUGZ: Decode = ") {
		t.Errorf("wrong decode not reported: %q", r.errs)
	}
}

func TestRoundTrip(t *testing.T) {
	msgs := []codec.Message{&nom.Hugz{}, &nom.Icanhaz{What: "/a", Toppings: []string{"x"}, Options: map[string]string{"k": "v"}}}
	if r := run(func(tb testing.TB) { RoundTrip(tb, nom.Decode, msgs) }); len(r.errs) != 0 {
		t.Errorf("round trip fails: %q", r.errs)
	}
	failing := func(frame []byte, lim *codec.Limits) (codec.Message, error) {
		return nil, &codec.Error{Kind: codec.Truncated, Protocol: "nom"}
	}
	if r := run(func(tb testing.TB) { RoundTrip(tb, failing, msgs) }); len(r.errs) != 2 {
		t.Errorf("decode errors not reported: %q", r.errs)
	}
	bad := []codec.Message{&nom.Wtf{Reason: strings.Repeat("x", 256)}}
	if r := run(func(tb testing.TB) { RoundTrip(tb, nom.Decode, bad) }); len(r.errs) != 1 || !strings.HasPrefix(r.errs[0], "WTF: Append:") {
		t.Errorf("append error not reported: %q", r.errs)
	}
}

func TestSameMessage(t *testing.T) {
	for _, tt := range []struct {
		a, b codec.Message
		same bool
	}{
		{&nom.Hugz{}, &nom.Hugz{}, true},
		{&nom.Hugz{}, &nom.HugzOk{}, false},
		{&nom.Icanhaz{}, &nom.Icanhaz{Toppings: []string{}, Options: map[string]string{}}, true},
		{&nom.Icanhaz{Toppings: []string{"a"}}, &nom.Icanhaz{Toppings: []string{"b"}}, false},
		{&nom.Icanhaz{Toppings: []string{"a"}}, &nom.Icanhaz{Toppings: []string{"a", "b"}}, false},
		{&nom.Icanhaz{Options: map[string]string{"k": ""}}, &nom.Icanhaz{Options: map[string]string{"j": ""}}, false},
		{&nom.Icanhaz{Options: map[string]string{"k": "v"}}, &nom.Icanhaz{Options: map[string]string{"k": "w"}}, false},
		{&nom.Cheezburger{Body: []byte{}}, &nom.Cheezburger{}, true},
		{&nom.Cheezburger{Body: []byte{1}}, &nom.Cheezburger{Body: []byte{2}}, false},
		{&nom.Wtf{Code: 1}, &nom.Wtf{Code: 2}, false},
		{&nom.Wtf{Reason: "a"}, &nom.Wtf{Reason: "a"}, true},
	} {
		if got := SameMessage(tt.a, tt.b); got != tt.same {
			t.Errorf("SameMessage(%+v, %+v) = %v", tt.a, tt.b, got)
		}
	}
}
