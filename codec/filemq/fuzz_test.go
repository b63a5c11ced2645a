package filemq

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fmq/fmq/codec"
)

// FuzzDecode: Decode never panics, fails only with a typed error, and what
// it accepts is stable: decode -> encode -> decode gives the same message,
// and the re-encoding is a fixed point.
func FuzzDecode(f *testing.F) {
	for _, b := range allFrames(f) {
		f.Add(b)
	}
	files, _ := filepath.Glob(cCaptures)
	for _, file := range files {
		if stream, err := os.ReadFile(file); err == nil {
			for _, fr := range zmtpFramesLoose(stream) {
				f.Add(fr)
			}
		}
	}
	f.Add([]byte{0xAA, 0xA3, 0x01, 0x06, 'F', 'I', 'L', 'E', 'M', 'Q', 0x00, 0x01}) // bad constant
	f.Fuzz(func(t *testing.T, frame []byte) {
		lim := &codec.Limits{MaxFrame: 1 << 16, MaxChunk: 1 << 12, MaxItems: 64}
		m, err := Decode(frame, lim)
		if err != nil {
			var ce *codec.Error
			if !errors.As(err, &ce) || ce.Protocol != ProtocolName || ce.Kind == 0 || ce.Kind == codec.BadValue {
				t.Fatalf("untyped or wrong error %#v", err)
			}
			if ce.Offset < 0 || ce.Offset > len(frame) {
				t.Fatalf("offset %d outside frame of %d", ce.Offset, len(frame))
			}
			if ce.Kind != codec.BadConstant {
				if m != nil {
					t.Fatalf("message %v with error %v", m, err)
				}
				return
			}
		}
		enc, encErr := m.Append(nil)
		if encErr != nil {
			t.Fatalf("decoded %s does not encode: %v", m.Info().Name, encErr)
		}
		if len(enc) != m.Length() {
			t.Fatalf("Length() %d, encoded %d", m.Length(), len(enc))
		}
		m2, err2 := Decode(enc, lim)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("re-decode error changed: %v -> %v", err, err2)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("unstable: %+v -> %+v", m, m2)
		}
		enc2, encErr := m2.Append(nil)
		if encErr != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not a fixed point: % X -> % X (%v)", enc, enc2, encErr)
		}
	})
}

// zmtpFramesLoose is zmtpFrames without a *testing.T, for fuzz seeds.
func zmtpFramesLoose(stream []byte) (out [][]byte) {
	for p := 64; p+2 <= len(stream); {
		flags := stream[p]
		n, hdr := int(stream[p+1]), 2
		if flags&0x02 != 0 {
			if p+9 > len(stream) {
				return
			}
			n, hdr = int(stream[p+8]), 9 // captures hold small frames only
		}
		if p+hdr+n > len(stream) {
			return
		}
		if flags&0x04 == 0 {
			out = append(out, stream[p+hdr:p+hdr+n])
		}
		p += hdr + n
	}
	return out
}
