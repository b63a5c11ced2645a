package main

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// wireTracer prints --wire lines: a UTC timestamp, the peer and the
// message ("12:00:01.250113 peer=00a1b2 C: NOM credit=1000 sequence=0"),
// with --wire-hex a hex dump of the frame under it (the first
// wireHexMax bytes). Lines go through the writer the log uses, so wire
// lines and log records form one ordered stream.
type wireTracer struct {
	out    *syncWriter
	hex    bool
	noPeer string // shown for a client's messages (its one peer, the server)
}

// wireHexMax bounds the dump of one frame (a CHEEZBURGER holds up to a chunk).
const wireHexMax = 256

func (t *wireTracer) trace(peer, line string, body []byte) {
	var b strings.Builder
	b.WriteString(time.Now().UTC().Format("15:04:05.000000"))
	b.WriteString(" peer=")
	b.WriteString(showPeer(peer, t.noPeer))
	b.WriteByte(' ')
	b.WriteString(line)
	b.WriteByte('\n')
	if t.hex && len(body) > 0 {
		n := min(len(body), wireHexMax)
		for _, l := range strings.SplitAfter(strings.TrimRight(hex.Dump(body[:n]), "\n"), "\n") {
			b.WriteString("    ")
			b.WriteString(strings.TrimRight(l, "\n"))
			b.WriteByte('\n')
		}
		if n < len(body) {
			fmt.Fprintf(&b, "    ... %d more bytes\n", len(body)-n)
		}
	}
	_, _ = t.out.Write([]byte(b.String()))
}

// showPeer prints a peer identity: printable ones as they are, binary
// ZeroMQ identities in hex, "" as def.
func showPeer(id, def string) string {
	if id == "" {
		if def == "" {
			return "-"
		}
		return def
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || r == ' ' {
			return hex.EncodeToString([]byte(id))
		}
	}
	if strings.ContainsAny(id, `"=`) {
		return strconv.Quote(id)
	}
	return id
}
