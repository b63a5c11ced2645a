package testutil

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
)

// ZMTPDealer is a ZMTP 3.0 DEALER with the NULL mechanism over a bare TCP
// connection, written by hand (no zmq4): the least a FileMQ client can cost.
// Frames are read into one reused buffer. Test and benchmark helper.
type ZMTPDealer struct {
	C   net.Conn
	br  *bufio.Reader
	buf []byte // the last frame read (reused)
	out []byte // the frame being written (reused)
	// trunc is the buffer of a recv with MSG_TRUNC (never written to)
	trunc []byte
	// Timeout bounds each read and write (0: 30 s).
	Timeout time.Duration
}

// DialZMTP connects to endpoint ("tcp://host:port") and does the NULL
// handshake as a DEALER presenting identity ("" lets the ROUTER pick one).
func DialZMTP(endpoint, identity string) (*ZMTPDealer, error) {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(endpoint, "tcp://"), 10*time.Second)
	if err != nil {
		return nil, err
	}
	// A small buffer: what it reads ahead of a chunk's head is chunk
	// content copied to user space, which discard would have dropped in
	// the kernel (with 64 KiB, a tenth of a no-disk sink's CPU).
	z := &ZMTPDealer{C: c, br: bufio.NewReaderSize(c, 4<<10)}
	if err := z.handshake(identity); err != nil {
		c.Close()
		return nil, fmt.Errorf("zmtp handshake: %w", err)
	}
	return z, nil
}

func (z *ZMTPDealer) handshake(identity string) error {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, 0
	copy(g[12:32], "NULL")
	if err := z.write(g); err != nil {
		return err
	}
	peer := make([]byte, 64)
	z.deadline()
	if _, err := io.ReadFull(z.br, peer); err != nil {
		return err
	}
	if peer[0] != 0xFF || peer[9] != 0x7F || peer[10] != 3 || strings.TrimRight(string(peer[12:32]), "\x00") != "NULL" {
		return fmt.Errorf("unexpected greeting % x", peer)
	}
	ready := []byte("\x05READY")
	for _, p := range [][2]string{{"Socket-Type", "DEALER"}, {"Identity", identity}} {
		ready = append(ready, byte(len(p[0])))
		ready = append(ready, p[0]...)
		ready = binary.BigEndian.AppendUint32(ready, uint32(len(p[1])))
		ready = append(ready, p[1]...)
	}
	if err := z.writeFrame(0x04, ready); err != nil {
		return err
	}
	cmd, body, err := z.ReadFrame()
	if err != nil {
		return err
	}
	if !cmd || !strings.HasPrefix(string(body), "\x05READY") {
		return fmt.Errorf("want READY, got %q", body)
	}
	return nil
}

func (z *ZMTPDealer) deadline() {
	t := z.Timeout
	if t <= 0 {
		t = 30 * time.Second
	}
	z.C.SetDeadline(time.Now().Add(t))
}

func (z *ZMTPDealer) write(b []byte) error {
	z.deadline()
	_, err := z.C.Write(b)
	return err
}

// writeFrame writes one frame (flags 0x04: a command; 0: a final message frame).
func (z *ZMTPDealer) writeFrame(flags byte, body []byte) error {
	b := z.out[:0]
	if len(body) < 256 {
		b = append(b, flags, byte(len(body)))
	} else {
		b = binary.BigEndian.AppendUint64(append(b, flags|0x02), uint64(len(body)))
	}
	b = append(b, body...)
	z.out = b
	return z.write(b)
}

// Send encodes m and sends it as a one-frame message.
func (z *ZMTPDealer) Send(m codec.Message) error {
	body, err := m.Append(nil)
	if err != nil {
		return err
	}
	return z.writeFrame(0, body)
}

// maxSinkFrame bounds a frame the dealer accepts.
const maxSinkFrame = 64 << 20

// ReadFrame reads one frame: whether it is a command, and its body, which
// stays valid until the next ReadFrame.
func (z *ZMTPDealer) ReadFrame() (cmd bool, body []byte, err error) {
	cmd, n, err := z.readHeader()
	if err != nil {
		return false, nil, err
	}
	body, err = z.readBody(n)
	return cmd, body, err
}

// readHeader reads a frame header: whether it is a command, and its size.
func (z *ZMTPDealer) readHeader() (cmd bool, n uint64, err error) {
	z.deadline()
	flags, err := z.br.ReadByte()
	if err != nil {
		return false, 0, err
	}
	if flags&0x02 != 0 {
		var b [8]byte
		if _, err := io.ReadFull(z.br, b[:]); err != nil {
			return false, 0, err
		}
		n = binary.BigEndian.Uint64(b[:])
	} else {
		b, err := z.br.ReadByte()
		if err != nil {
			return false, 0, err
		}
		n = uint64(b)
	}
	if n > maxSinkFrame {
		return false, 0, fmt.Errorf("frame of %d bytes", n)
	}
	return flags&0x04 != 0, n, nil
}

// readBody reads a frame body of n bytes into the reused buffer.
func (z *ZMTPDealer) readBody(n uint64) ([]byte, error) {
	if uint64(cap(z.buf)) < n {
		z.buf = make([]byte, n)
	}
	z.buf = z.buf[:n]
	_, err := io.ReadFull(z.br, z.buf)
	return z.buf, err
}

// readCheezburgerHead reads a CHEEZBURGER message frame of size n up to
// its chunk (whose size it returns) into the reused buffer and decodes
// what precedes the chunk into m; the chunk itself is left unread.
func (z *ZMTPDealer) readCheezburgerHead(n uint64, m *filemq.Cheezburger) (chunk uint64, err error) {
	b := z.buf[:0]
	read := func(k uint64) ([]byte, error) {
		if uint64(len(b))+k > n || k > maxSinkFrame {
			return nil, fmt.Errorf("CHEEZBURGER field of %d bytes beyond its %d-byte frame", k, n)
		}
		at := len(b)
		b = slices.Grow(b, int(k))[:at+int(k)]
		_, err := io.ReadFull(z.br, b[at:])
		return b[at:], err
	}
	u32 := func() (uint64, error) {
		f, err := read(4)
		if err != nil {
			return 0, err
		}
		return uint64(binary.BigEndian.Uint32(f)), nil
	}
	if _, err := read(3 + 8 + 1); err != nil {
		return 0, err
	}
	k, err := u32() // filename
	if err == nil {
		_, err = read(k + 8 + 1)
	}
	if err != nil {
		return 0, err
	}
	pairs, err := u32() // headers
	for i := uint64(0); i < pairs && err == nil; i++ {
		var f []byte
		if f, err = read(1); err == nil {
			if _, err = read(uint64(f[0])); err == nil {
				if k, err = u32(); err == nil {
					_, err = read(k)
				}
			}
		}
	}
	if err == nil {
		chunk, err = u32()
	}
	if err != nil {
		return 0, err
	}
	z.buf = b
	if uint64(len(b))+chunk != n {
		return 0, fmt.Errorf("CHEEZBURGER chunk of %d bytes in a %d-byte frame with a %d-byte head", chunk, n, len(b))
	}
	// Decode the head with an empty chunk (its length field rewritten).
	clear(b[len(b)-4:])
	return chunk, m.Decode(b, nil)
}

// Close closes the connection.
func (z *ZMTPDealer) Close() error { return z.C.Close() }

// SinkResult is what a sink received.
type SinkResult struct {
	Bytes int64 // content bytes
	Files int64 // files completed (their eof chunk seen)
	Msgs  int64 // CHEEZBURGERs
}

// Sink is a FileMQ client that reads and discards. It opens a peering on
// z, calls ready (if not nil) and waits for it to return, subscribes to
// path with RESYNC, SYNCED and INLINE-EOF, grants window bytes of credit
// and refills it as content arrives, answers HUGZ, and returns at the
// synced marker (after a KTHXBAI). It checks what a broken server could
// get wrong: every CHEEZBURGER's sequence follows the last one, every
// file's chunks are contiguous from offset 0, each chunk's length fits its
// frame. The content of a large CHEEZBURGER is never read: its head is
// decoded and its chunk dropped in the kernel (discard), so a sink costs
// little more than the TCP receive; small frames are read into one reused
// buffer.
func Sink(z *ZMTPDealer, path string, window int64, ready func()) (SinkResult, error) {
	var res SinkResult
	if err := z.Send(filemq.NewOhai()); err != nil {
		return res, err
	}
	if err := sinkExpect(z, filemq.IDOhaiOk); err != nil {
		return res, err
	}
	if ready != nil {
		ready()
	}
	// The options of fmqrun sync that shape what the server sends: chunk
	// digests too (the server then sends large chunks from the file).
	ic := &filemq.Icanhaz{Path: path, Options: map[string]string{"RESYNC": "1", "SYNCED": "1", "INLINE-EOF": "1",
		"CHUNK-DIGEST": "XXH3-128"}}
	if err := z.Send(ic); err != nil {
		return res, err
	}
	if err := z.Send(&filemq.Nom{Credit: uint64(window)}); err != nil {
		return res, err
	}
	var (
		msg   filemq.Cheezburger
		nom   filemq.Nom
		owed  int64
		seq   uint64
		file  string
		next  uint64 // expected offset in file
		refil = max(window/4, 1)
	)
	for {
		cmd, size, err := z.readHeader()
		if err != nil {
			return res, fmt.Errorf("sink: %w", err)
		}
		var chunk uint64
		if p, _ := z.br.Peek(3); !cmd && size > 4096 && len(p) == 3 && p[2] == filemq.IDCheezburger {
			// content: the head is decoded, the chunk dropped unread
			if chunk, err = z.readCheezburgerHead(size, &msg); err != nil {
				return res, fmt.Errorf("sink: %w", err)
			}
			if err := z.discard(chunk); err != nil {
				return res, fmt.Errorf("sink: %w", err)
			}
		} else {
			body, err := z.readBody(size)
			if err != nil {
				return res, fmt.Errorf("sink: %w", err)
			}
			if cmd || len(body) < 3 {
				continue
			}
			switch body[2] {
			case filemq.IDCheezburger:
			case filemq.IDHugz:
				if err := z.Send(filemq.NewHugzOk()); err != nil {
					return res, err
				}
				continue
			case filemq.IDIcanhazOk, filemq.IDHugzOk:
				continue
			default:
				m, err := filemq.Decode(body, nil)
				if err != nil {
					return res, fmt.Errorf("sink: undecodable frame: %w", err)
				}
				return res, fmt.Errorf("sink: unexpected %s", m.Info().Name)
			}
			if err := msg.Decode(body, nil); err != nil {
				return res, fmt.Errorf("sink: %w", err)
			}
			chunk = uint64(len(msg.Chunk))
		}
		if msg.Sequence != seq {
			return res, fmt.Errorf("sink: CHEEZBURGER sequence %d, want %d", msg.Sequence, seq)
		}
		seq++
		res.Msgs++
		switch msg.Operation {
		case 1: // content
		case 3: // synced
			z.Send(filemq.NewKthxbai())
			return res, nil
		default:
			continue
		}
		if msg.Filename != file {
			if next != 0 {
				return res, fmt.Errorf("sink: %s started before %s ended (at %d)", msg.Filename, file, next)
			}
			file = msg.Filename
		}
		if msg.Offset != next {
			return res, fmt.Errorf("sink: %s chunk at %d, want %d", file, msg.Offset, next)
		}
		n := int64(chunk)
		res.Bytes += n
		next += chunk
		if msg.EOF == 1 {
			res.Files++
			file, next = "", 0
		}
		if owed += n; owed >= refil {
			nom.Credit = uint64(owed)
			if err := z.Send(&nom); err != nil {
				return res, err
			}
			owed = 0
		}
	}
}

// sinkExpect reads messages until one with id want (commands skipped).
func sinkExpect(z *ZMTPDealer, want uint8) error {
	for {
		cmd, body, err := z.ReadFrame()
		if err != nil {
			return err
		}
		if cmd || len(body) < 3 {
			continue
		}
		if body[2] == want {
			return nil
		}
		m, err := filemq.Decode(body, nil)
		if err != nil {
			return err
		}
		return errors.New("sink: unexpected " + m.Info().Name)
	}
}
