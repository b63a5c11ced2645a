package transport

// CURVE (ZMTP-CURVE, RFC 25/26 CurveZMQ) for the guarded transport.
//
// Design: zmq4's Security hook cannot carry CURVE (its Conn.send writes the
// frame header with the plaintext size before Encrypt, while CURVE sends
// each frame as a MESSAGE of another size), so CURVE lives in the guarded
// connection beneath zmq4, which already speaks the real handshake on the
// wire and a synthetic NULL one to zmq4. With CURVE the guard runs the
// CurveZMQ handshake (HELLO, WELCOME, INITIATE, READY), then
//   - reads: each MESSAGE is opened whole (box, nonce strictly above the
//     last one) before one byte of it goes up; the plaintext frame is then
//     checked like any NULL frame. A bad box, a replayed nonce or a
//     truncated command cuts that connection only. A goroutine per
//     connection receives and checks the next MESSAGE while the one before
//     is read up, decrypted straight into the reader's buffer (two frame
//     buffers per connection);
//   - writes: zmq4's plaintext frames are collected whole and sent as one
//     MESSAGE each (our PONGs too, as command frames). A Router's write
//     queue boxes them on its writer goroutine, in queue order, so nonces
//     go out in order and the sender's goroutine does no crypto; a Dealer
//     boxes them as it writes.
// MESSAGE boxes (crypto_box after precomputation, i.e. crypto_secretbox
// with the session key) go through internal/secretbox, whose AVX-512
// Salsa20 is about 4x x/crypto's; the handshake's few boxes use x/crypto.
// The server keeps nothing per client between WELCOME and INITIATE but its
// short-term key and a cookie key, both wiped once INITIATE is checked; the
// client wipes its short-term secret and the cookie once READY arrives.

import (
	"bufio"
	"bytes"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"

	msgbox "github.com/fmq/fmq/internal/secretbox"
)

const mechCURVE = "CURVE"

// Drop reasons of CURVE.
const (
	// ReasonBadBox: a CURVE box did not open (tampered, or another key).
	ReasonBadBox = "bad-box"
	// ReasonBadNonce: a CURVE nonce that is not above the last one (a replay).
	ReasonBadNonce = "bad-nonce"
)

// CurveServer makes a Router require CURVE.
type CurveServer struct {
	// Keys is the server's permanent key pair; clients must know Keys.Public
	// (derived from Keys.Secret when left zero).
	Keys CurveKeyPair
	// Clients lists the client public keys allowed in; nil lets in any
	// client that completes the handshake. A refused client gets ERROR "400".
	Clients *CurveKeySet
}

// CurveClient makes a Dealer use CURVE.
type CurveClient struct {
	// ServerKey is the server's permanent public key; a server that does
	// not hold its secret cannot complete the handshake.
	ServerKey CurveKey
	// Keys is the client's permanent key pair. Zero: Dial (or NewRedialer,
	// once for all its dials) draws one.
	Keys CurveKeyPair
}

var (
	nonceHello    = []byte("CurveZMQHELLO---")
	nonceWelcome  = []byte("WELCOME-")
	nonceCookie   = []byte("COOKIE--")
	nonceVouch    = []byte("VOUCH---")
	nonceInitiate = []byte("CurveZMQINITIATE")
	nonceReady    = []byte("CurveZMQREADY---")
	nonceMsgC     = "CurveZMQMESSAGEC"
	nonceMsgS     = "CurveZMQMESSAGES"
	msgCommand    = []byte("\x07MESSAGE")
)

// Sizes of the CURVE commands (bodies after the command name).
const (
	helloBodyLen    = 2 + 72 + 32 + 8 + 80 // version, padding, C', nonce, box
	welcomeBodyLen  = 16 + 144             // nonce, box[S' + cookie]
	cookieLen       = 16 + 80              // nonce, secretbox[C' + s']
	initiateMinBody = cookieLen + 8 + box.Overhead + 32 + 16 + 80
	readyMinBody    = 8 + box.Overhead
	// msgOverhead is what a MESSAGE adds to a frame body: name, nonce, MAC, flags.
	msgOverhead = 8 + 8 + box.Overhead + 1
)

func nonce24(prefix []byte, tail []byte) *[24]byte {
	var n [24]byte
	copy(n[:], prefix)
	copy(n[len(prefix):], tail)
	return &n
}

func shortNonce(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(crand.Reader, b); err != nil {
		panic("transport: no randomness: " + err.Error())
	}
	return b
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// curveClientHandshake runs the client side after the greetings; ourMeta is
// our READY-style metadata. It returns the server's metadata.
func (c *gconn) curveClientHandshake(ourMeta []byte) ([]byte, error) {
	cc := c.opt.CurveClient
	S := [32]byte(cc.ServerKey)
	C := [32]byte(cc.Keys.Secret)
	cPub, cSec, err := box.GenerateKey(crand.Reader)
	if err != nil {
		return nil, err
	}
	defer wipe(cSec[:])

	hello := make([]byte, 2+72, helloBodyLen)
	hello[0], hello[1] = 1, 0
	hello = append(hello, cPub[:]...)
	hello = append(hello, shortNonce(1)...)
	hello = box.Seal(hello, make([]byte, 64), nonce24(nonceHello, shortNonce(1)), &S, cSec)
	if err := c.sendCmd("HELLO", hello); err != nil {
		return nil, err
	}
	welcome, err := c.expectCmd("WELCOME")
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &AuthError{Reason: "the server closed the connection after our CURVE HELLO: is " + cc.ServerKey.String() + " its public key?"}
		}
		return nil, err
	}
	if len(welcome) != welcomeBodyLen {
		return nil, protoErr(ReasonBadHandshake, "CURVE WELCOME of %d bytes, want %d", len(welcome), welcomeBodyLen)
	}
	wp, ok := box.Open(nil, welcome[16:], nonce24(nonceWelcome, welcome[:16]), &S, cSec)
	if !ok {
		return nil, &AuthError{Reason: "the server's CURVE WELCOME does not open with server key " + cc.ServerKey.String() + " (not the server we expect)"}
	}
	defer wipe(wp)
	var sPub [32]byte
	copy(sPub[:], wp[:32])
	cookie := wp[32:128]

	var shared [32]byte
	box.Precompute(&shared, &sPub, cSec)

	vouchNonce := random(16)
	vouch := box.Seal(nil, append(append([]byte{}, cPub[:]...), S[:]...), nonce24(nonceVouch, vouchNonce), &sPub, &C)
	plain := make([]byte, 0, 128+len(ourMeta))
	plain = append(plain, cc.Keys.Public[:]...)
	plain = append(plain, vouchNonce...)
	plain = append(plain, vouch...)
	plain = append(plain, ourMeta...)
	initiate := make([]byte, 0, initiateMinBody+len(ourMeta))
	initiate = append(initiate, cookie...)
	initiate = append(initiate, shortNonce(2)...)
	initiate = box.SealAfterPrecomputation(initiate, plain, nonce24(nonceInitiate, shortNonce(2)), &shared)
	wipe(C[:])
	if err := c.sendCmd("INITIATE", initiate); err != nil {
		return nil, err
	}
	ready, err := c.expectCmd("READY")
	if err != nil {
		return nil, err
	}
	if len(ready) < readyMinBody {
		return nil, protoErr(ReasonBadHandshake, "CURVE READY of %d bytes", len(ready))
	}
	meta, ok := box.OpenAfterPrecomputation(nil, ready[8:], nonce24(nonceReady, ready[:8]), &shared)
	if !ok {
		return nil, protoErr(ReasonBadBox, "CURVE READY box does not open")
	}
	c.curve = newCurveCodec(&shared, nonceMsgC, nonceMsgS, 3, binary.BigEndian.Uint64(ready[:8]), c.opt.MaxFrame)
	wipe(shared[:])
	return meta, nil
}

// curveServerHandshake runs the server side after the greetings. It checks
// the client's key and returns the client's metadata; the READY is sent by
// curveServerReady once the metadata is accepted.
func (c *gconn) curveServerHandshake() ([]byte, error) {
	cs := c.opt.CurveServer
	S := [32]byte(cs.Keys.Secret)
	defer wipe(S[:])
	hello, err := c.expectCmd("HELLO")
	if err != nil {
		return nil, err
	}
	if len(hello) != helloBodyLen {
		return nil, protoErr(ReasonBadHandshake, "CURVE HELLO of %d bytes, want %d", len(hello), helloBodyLen)
	}
	if hello[0] != 1 || hello[1] != 0 {
		return nil, protoErr(ReasonBadHandshake, "CURVE version %d.%d, want 1.0", hello[0], hello[1])
	}
	var cPub [32]byte
	copy(cPub[:], hello[74:106])
	helloNonce := binary.BigEndian.Uint64(hello[106:114])
	if _, ok := box.Open(nil, hello[114:], nonce24(nonceHello, hello[106:114]), &cPub, &S); !ok {
		return nil, protoErr(ReasonBadBox, "CURVE HELLO box does not open: the client has another server key")
	}

	sPub, sSec, err := box.GenerateKey(crand.Reader)
	if err != nil {
		return nil, err
	}
	defer wipe(sSec[:])
	var cookieKey [32]byte
	copy(cookieKey[:], random(32))
	defer wipe(cookieKey[:])
	cookieNonce := random(16)
	cookiePlain := append(append(make([]byte, 0, 64), cPub[:]...), sSec[:]...)
	cookie := secretbox.Seal(append([]byte{}, cookieNonce...), cookiePlain, nonce24(nonceCookie, cookieNonce), &cookieKey)
	wp := append(append(make([]byte, 0, 128), sPub[:]...), cookie...)
	wn := random(16)
	welcome := box.Seal(append([]byte{}, wn...), wp, nonce24(nonceWelcome, wn), &cPub, &S)
	if err := c.sendCmd("WELCOME", welcome); err != nil {
		return nil, err
	}

	initiate, err := c.expectCmd("INITIATE")
	if err != nil {
		return nil, err
	}
	if len(initiate) < initiateMinBody {
		return nil, protoErr(ReasonBadHandshake, "CURVE INITIATE of %d bytes", len(initiate))
	}
	got, ok := secretbox.Open(nil, initiate[16:cookieLen], nonce24(nonceCookie, initiate[:16]), &cookieKey)
	wipe(cookieKey[:]) // the cookie is good for this one INITIATE only
	if !ok || subtle.ConstantTimeCompare(got, cookiePlain) != 1 {
		return nil, protoErr(ReasonBadBox, "CURVE INITIATE cookie is not ours")
	}
	wipe(got)
	wipe(cookiePlain)
	in := binary.BigEndian.Uint64(initiate[cookieLen : cookieLen+8])
	if in <= helloNonce {
		return nil, protoErr(ReasonBadNonce, "CURVE INITIATE nonce %d not above HELLO's %d", in, helloNonce)
	}
	var shared [32]byte
	box.Precompute(&shared, &cPub, sSec)
	defer wipe(shared[:])
	plain, ok := box.OpenAfterPrecomputation(nil, initiate[cookieLen+8:], nonce24(nonceInitiate, initiate[cookieLen:cookieLen+8]), &shared)
	if !ok {
		return nil, protoErr(ReasonBadBox, "CURVE INITIATE box does not open")
	}
	var C [32]byte
	copy(C[:], plain[:32])
	v, ok := box.Open(nil, plain[48:128], nonce24(nonceVouch, plain[32:48]), &C, sSec)
	if !ok || subtle.ConstantTimeCompare(v[:32], cPub[:]) != 1 || subtle.ConstantTimeCompare(v[32:], cs.Keys.Public[:]) != 1 {
		return nil, protoErr(ReasonBadBox, "CURVE vouch does not hold for client key %s", CurveKey(C))
	}
	if cs.Clients != nil && !cs.Clients.Contains(C) {
		_ = c.sendCmd("ERROR", append([]byte{3}, "400"...))
		return nil, protoErr(ReasonAuthFailed, "CURVE client key %s is not allowed", CurveKey(C))
	}
	c.curveKey = C
	c.curve = newCurveCodec(&shared, nonceMsgS, nonceMsgC, 1, in, c.opt.MaxFrame)
	return plain[128:], nil
}

// curveServerReady sends READY with our metadata (nonce 1).
func (c *gconn) curveServerReady(meta []byte) error {
	n := c.curve.nextNonce()
	ready := box.SealAfterPrecomputation(shortNonce(n), meta, nonce24(nonceReady, shortNonce(n)), &c.curve.shared)
	return c.sendCmd("READY", ready)
}

// curveCodec boxes and opens MESSAGEs after the handshake.
type curveCodec struct {
	shared     [32]byte
	sendPrefix string
	recvPrefix string
	sendNonce  uint64 // next nonce we use (under the gconn's wmu)
	recvNonce  uint64 // last nonce the peer used (reader only)
	maxFrame   int

	// reader side
	src  *bufio.Reader
	hdr  [9]byte
	cbuf []byte      // a MESSAGE body
	cur  openedFrame // the MESSAGE next opened
	// With startReader, MESSAGEs are received and checked ahead on their
	// own goroutine (overlapping that with what the reader above does).
	ahead chan openedFrame
	free  chan []byte
	done  <-chan struct{}
	// the consumer's side (Read): the frame being read
	rd   openedFrame
	held bool // rd was taken from ahead: its buffer goes back
	err  error

	// writer side: the plaintext frame zmq4 is writing
	whdr  [9]byte
	wn    int
	wbody uint64
	wmore bool
	wcmd  bool
	plain []byte // flags byte + body

	wsize int // the frame's body size

	// buffers of plaintexts (heads, whole frames) and of boxed frames,
	// given back once used
	headBufs, plainBufs, sealBufs bufCache
}

func newCurveCodec(shared *[32]byte, send, recv string, sendNonce, recvNonce uint64, maxFrame int) *curveCodec {
	return &curveCodec{shared: *shared, sendPrefix: send, recvPrefix: recv, sendNonce: sendNonce, recvNonce: recvNonce, maxFrame: maxFrame,
		headBufs: make(bufCache, 8), plainBufs: make(bufCache, 2), sealBufs: make(bufCache, 2)}
}

// bufCache keeps a few buffers (of at most keepBuf bytes) for reuse, so a
// stream of large frames does not allocate, zero and collect two buffers
// per frame.
type bufCache chan []byte

// get returns an empty buffer of capacity n or more.
func (c bufCache) get(n int) []byte {
	select {
	case b := <-c:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, n)
}

// put offers b for reuse; the caller no longer touches it.
func (c bufCache) put(b []byte) {
	if cap(b) > keepBuf {
		return
	}
	select {
	case c <- b[:0]:
	default:
	}
}

func (k *curveCodec) nextNonce() uint64 {
	n := k.sendNonce
	k.sendNonce++
	return n
}

// seal boxes one plaintext (flags byte + body) as a complete MESSAGE frame.
// The frame's buffer comes from sealBufs; give it back once written.
func (k *curveCodec) seal(plain []byte) []byte { return k.seal2(plain, nil) }

// seal2 is seal of the plaintext plain followed by tail (a body kept by
// reference, boxed from where it is).
func (k *curveCodec) seal2(plain, tail []byte) []byte {
	size := msgOverhead - 1 + len(plain) + len(tail)
	frame := k.sealBufs.get(9 + size)
	if size > 255 {
		frame = append(frame, flagLong)
		frame = binary.BigEndian.AppendUint64(frame, uint64(size))
	} else {
		frame = append(frame, 0, byte(size))
	}
	n := k.nextNonce()
	frame = append(frame, msgCommand...)
	frame = binary.BigEndian.AppendUint64(frame, n)
	var nonce [24]byte
	copy(nonce[:], k.sendPrefix)
	binary.BigEndian.PutUint64(nonce[16:], n)
	return msgbox.Seal2(frame, plain, tail, &nonce, &k.shared)
}

// plainMsg is one outbound frame in plaintext: plain (flags byte, then
// the body or its head; from headBufs or plainBufs, see putPlain) and,
// when the body's rest was handed over, tail by reference with the
// release that gives it back once boxed.
type plainMsg struct {
	plain, tail []byte
	release     func()
}

// putPlain gives a plaintext buffer back to its cache.
func (k *curveCodec) putPlain(b []byte) {
	if cap(b) <= headCap {
		k.headBufs.put(b)
	} else {
		k.plainBufs.put(b)
	}
}

// headCap is the capacity of a plaintext buffer that holds a frame's
// flags and head only (or all of a small frame).
const headCap = smallWrite + 1

// sealFrame boxes a frame given as plaintext flags (1 MORE, 2 COMMAND) and body.
func (k *curveCodec) sealFrame(flags byte, body []byte) []byte {
	return k.seal(append([]byte{flags}, body...))
}

// openedFrame is a MESSAGE whose box holds, as the reader above reads it:
// the plaintext frame's header, then its body, decrypted straight into
// the reader's buffer as it is read (from ct, in buf): the plaintext is
// never written anywhere else, and nothing of it exists before the whole
// box is known to be genuine.
type openedFrame struct {
	buf  []byte
	hdr  [9]byte
	hl   int    // header length
	ct   []byte // the body's ciphertext
	st   msgbox.Stream
	read int // header and body bytes read up
	err  error
}

// left is how many bytes of the frame are still to be read.
func (f *openedFrame) left() int { return f.hl + len(f.ct) - f.read }

// curveAhead is how many opened MESSAGEs may wait for the reader above
// besides the one handed over: none, so a connection holds two frame
// buffers (the one being read up, the one being received and checked);
// the reader above only decrypts, so the opener rarely waits for it. Every
// buffer held raises the client's heap under its soft memory limit, and
// with it how often the collector runs.
const curveAhead = 0

// keepBuf is the largest buffer a connection keeps between frames (fmq's
// chunks fit); a larger frame's buffers are left to the collector, so idle
// connections do not hold MaxFrame each.
const keepBuf = 2<<20 + 64

// startReader opens MESSAGEs ahead on a goroutine of their own, which ends
// when the stream fails (the connection's raw side closed) or done closes.
func (k *curveCodec) startReader(done <-chan struct{}) {
	k.ahead = make(chan openedFrame, curveAhead)
	k.free = make(chan []byte, curveBufs)
	k.done = done
	go k.readAhead()
}

// curveBufs is how many frame buffers go round between the opener and the
// reader above: the one being received and opened, the one being read up.
const curveBufs = 2

func (k *curveCodec) readAhead() {
	fresh := curveBufs // buffers not made yet
	for {
		if fresh > 0 {
			fresh--
			k.cbuf = nil // next makes it
		} else {
			select { // wait for a buffer the reader above is done with
			case k.cbuf = <-k.free:
			case <-k.done:
				return
			}
		}
		err := k.next()
		f := k.cur
		f.err = err
		k.cbuf = nil // the reader above's now
		k.cur.st.Wipe()
		select {
		case k.ahead <- f:
		case <-k.done:
			f.st.Wipe()
			return
		}
		if err != nil {
			return
		}
	}
}

// errCurveClosed: the connection was cut while its reader waited.
var errCurveClosed = errors.New("transport: connection closed")

// Read serves the guard's frame reader the peer's frames in plaintext ZMTP
// framing, one opened MESSAGE at a time, decrypting into p.
func (k *curveCodec) Read(p []byte) (int, error) {
	for k.rd.left() == 0 {
		k.rd.st.Wipe()
		if k.ahead == nil {
			if err := k.next(); err != nil {
				return 0, err
			}
			k.rd = k.cur
			k.cur.st.Wipe()
			continue
		}
		if k.err != nil {
			return 0, k.err
		}
		if k.held {
			// A drained buffer goes back to the opener (nil: one it must
			// make anew, a frame's own above keepBuf), so exactly
			// curveBufs go round and the opener never makes one while
			// one is on its way back.
			b := k.rd.buf[:0]
			if cap(b) > keepBuf {
				b = nil
			}
			k.free <- b // never blocks: the channel holds curveBufs
		}
		k.rd, k.held = openedFrame{}, false
		select {
		case f := <-k.ahead:
			k.rd, k.err, k.held = f, f.err, true
		case <-k.done:
			return 0, errCurveClosed
		}
	}
	f := &k.rd
	if f.read < f.hl {
		n := copy(p, f.hdr[f.read:f.hl])
		f.read += n
		return n, nil
	}
	off := f.read - f.hl
	n := min(len(p), len(f.ct)-off)
	f.st.XORAt(p[:n], f.ct[off:off+n], uint64(1+off)) // message byte 0 is the flags
	f.read += n
	return n, nil
}

// next receives the next MESSAGE into cbuf and checks it: k.cur is the
// frame to read, or empty if it fails.
func (k *curveCodec) next() error {
	k.cur = openedFrame{} // nothing of a frame that fails may be read
	flags, err := k.src.ReadByte()
	if err != nil {
		return err
	}
	hl := headerLen(flags)
	k.hdr[0] = flags
	if _, err := io.ReadFull(k.src, k.hdr[1:hl]); err != nil {
		return noEOF(err)
	}
	limit := uint64(k.maxFrame + msgOverhead)
	h, err := parseFrameHeader(k.hdr[:hl], limit, limit)
	if err != nil {
		return err
	}
	if h.more() {
		return protoErr(ReasonBadFrame, "CURVE MESSAGE with the MORE flag")
	}
	if h.Size < msgOverhead {
		return protoErr(ReasonBadCommand, "CURVE MESSAGE of %d bytes, need at least %d", h.Size, msgOverhead)
	}
	if uint64(cap(k.cbuf)) < h.Size {
		k.cbuf = make([]byte, h.Size)
	}
	buf := k.cbuf
	body := buf[:h.Size]
	if cap(buf) > keepBuf {
		k.cbuf, buf = nil, nil // this frame's only
	}
	if _, err := io.ReadFull(k.src, body); err != nil {
		return noEOF(err)
	}
	if !bytes.Equal(body[:8], msgCommand) {
		name, _, perr := parseCommand(body)
		if perr == nil && name == "ERROR" {
			return protoErr(ReasonBadCommand, "peer sent ERROR %q after the handshake", parseErrorReason(body[6:]))
		}
		return protoErr(ReasonBadCommand, "not a CURVE MESSAGE after the handshake")
	}
	n := binary.BigEndian.Uint64(body[8:16])
	if n <= k.recvNonce {
		return protoErr(ReasonBadNonce, "CURVE MESSAGE nonce %d not above %d (replayed or reordered)", n, k.recvNonce)
	}
	var nonce [24]byte
	copy(nonce[:], k.recvPrefix)
	copy(nonce[16:], body[8:16])
	// The tag is checked over the whole box here; the body is decrypted
	// only as it is read (Read), straight into the reader's buffer.
	st, ok := msgbox.OpenStream(body[16:], &nonce, &k.shared)
	if !ok {
		return protoErr(ReasonBadBox, "CURVE MESSAGE %d does not open (tampered, or another key)", n)
	}
	k.recvNonce = n
	var pf [1]byte
	st.XORAt(pf[:], body[32:33], 0)
	f := openedFrame{buf: buf, ct: body[33:], st: st}
	if pf[0]&0x01 != 0 {
		f.hdr[0] |= flagMore
	}
	if pf[0]&0x02 != 0 {
		f.hdr[0] |= flagCommand
	}
	if size := len(f.ct); size > 255 {
		f.hdr[0] |= flagLong
		binary.BigEndian.PutUint64(f.hdr[1:9], uint64(size))
		f.hl = 9
	} else {
		f.hdr[1] = byte(size)
		f.hl = 2
	}
	k.cur = f
	return nil
}

// noEOF: a stream that ends inside a frame is truncated.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// write takes bytes of the plaintext stream (zmq4's, or Router/Dealer
// sends') and hands each completed frame to emit, which then owns it; the
// gconn's wmu is held. keep(p), for a large p that ends a frame's body,
// says whether p may be kept by reference (with the release that gives it
// back, if any): then it goes up as the frame's tail instead of being
// copied.
func (k *curveCodec) write(p []byte, keep func(p []byte) (release func(), ok bool), emit func(m plainMsg) error) error {
	for len(p) > 0 {
		if k.wn == 0 || k.wn < headerLen(k.whdr[0]) {
			k.whdr[k.wn] = p[0]
			k.wn++
			p = p[1:]
			if k.wn < headerLen(k.whdr[0]) {
				continue
			}
			h, err := parseFrameHeader(k.whdr[:k.wn], 1<<62, 1<<62)
			if err != nil {
				return err
			}
			k.wbody, k.wsize = h.Size, int(h.Size)
			k.wmore, k.wcmd = h.more(), h.command()
			var f byte
			if k.wmore {
				f |= 0x01
			}
			if k.wcmd {
				f |= 0x02
			}
			// A large body may come by reference: start with a head
			// buffer, grown into a whole frame's if it must be copied.
			k.plain = append(k.headBufs.get(headCap), f)
		} else {
			var release func()
			kept := false
			if uint64(len(p)) == k.wbody && len(p) > smallWrite {
				release, kept = keep(p)
			}
			if kept {
				m := plainMsg{plain: k.plain, tail: p, release: release}
				k.wn, k.wbody, k.plain, p = 0, 0, nil, nil
				if err := emit(m); err != nil {
					return err
				}
				continue
			}
			if need := 1 + k.wsize; cap(k.plain) < need {
				b := append(k.plainBufs.get(need), k.plain...)
				k.putPlain(k.plain)
				k.plain = b
			}
			n := min(uint64(len(p)), k.wbody)
			k.plain = append(k.plain, p[:n]...)
			k.wbody -= n
			p = p[n:]
		}
		if k.wn == headerLen(k.whdr[0]) && k.wbody == 0 {
			k.wn = 0
			plain := k.plain
			k.plain = nil
			if err := emit(plainMsg{plain: plain}); err != nil {
				return err
			}
		}
	}
	return nil
}
