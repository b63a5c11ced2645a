package interp

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/fmq/fmq/codec"
)

// FormatMessage renders a message in the compact line form shared with the
// conformance scripts: dir ("C" or "S"), the name, then every field in
// model order as name=value. Numbers are decimal, strings quoted (Go
// syntax), hashes {key="value",...} sorted by key, string lists
// ["a","b"], chunk and octets fields <N bytes>.
//
//	S: CHEEZBURGER sequence=0 operation=1 filename="/a" offset=0 eof=1 headers={} chunk=<15 bytes>
func FormatMessage(dir string, m codec.Message) string {
	var b strings.Builder
	mi := m.Info()
	b.WriteString(dir)
	b.WriteString(": ")
	b.WriteString(mi.Name)
	for _, f := range mi.Fields {
		v, ok := m.Get(f.Name)
		if !ok {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(f.Name)
		b.WriteByte('=')
		formatValue(&b, v)
	}
	return b.String()
}

func formatValue(b *strings.Builder, v any) {
	switch v := v.(type) {
	case uint8:
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint16:
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint32:
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint64:
		b.WriteString(strconv.FormatUint(v, 10))
	case int:
		b.WriteString(strconv.Itoa(v))
	case string:
		b.WriteString(strconv.Quote(v))
	case []byte:
		b.WriteByte('<')
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteString(" bytes>")
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte('=')
			b.WriteString(strconv.Quote(v[k]))
		}
		b.WriteByte('}')
	case []string:
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(s))
		}
		b.WriteByte(']')
	default:
		b.WriteString(strconv.Quote(strings.TrimSpace(strings.ReplaceAll(sprint(v), "\n", " "))))
	}
}

func sprint(v any) string { return fmt.Sprint(v) }
