package transport

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzGuard feeds arbitrary bytes, as a TCP peer, to a NULL and a PLAIN
// Router and checks after each input that both still serve a well-behaved
// Dealer. A panic anywhere (zmq4's parsers included) fails the run.
//
//	go test -run '^$' -fuzz FuzzGuard -fuzztime 60s ./transport
func FuzzGuard(f *testing.F) {
	nullHS := append(appendGreeting(nil, mechNULL, false),
		appendCommand(nil, "READY", appendMetadata(nil, property{propSocketType, "DEALER"}, property{propIdentity, "fz"}))...)
	plainHS := appendGreeting(nil, mechPLAIN, false)
	plainHS = appendCommand(plainHS, "HELLO", appendPlainHello(nil, "fuzz", "pw"))
	plainHS = appendCommand(plainHS, "INITIATE", appendMetadata(nil, property{propSocketType, "DEALER"}))
	msg := func(b []byte, more bool) []byte {
		var fl byte
		if more {
			fl = flagMore
		}
		return append(appendFrameHeader(nil, fl, len(b)), b...)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(cat(nullHS, msg([]byte("hello"), false)))
	f.Add(cat(plainHS, msg([]byte("hello"), false), msg(make([]byte, 300), false)))
	f.Add(cat(nullHS, msg([]byte("a"), true), msg([]byte("b"), false)))
	f.Add(cat(nullHS, appendCommand(nil, "PING", []byte{0, 1, 'x'}), msg(nil, false)))
	f.Add(cat(appendGreeting(nil, mechNULL, false), appendCommand(nil, "READY", []byte{1, 'a', 0})))
	f.Add(cat(appendGreeting(nil, mechNULL, false), []byte{flagCommand, 3, 5, 'R', 'E'}))
	f.Add(cat(nullHS, binary.BigEndian.AppendUint64([]byte{flagLong}, 1<<62)))
	f.Add(cat(appendGreeting(nil, mechNULL, false), binary.BigEndian.AppendUint64([]byte{flagCommand | flagLong}, 1<<62)))
	f.Add(appendGreeting(nil, mechNULL, false)[:10])
	f.Add(cat(appendGreeting(nil, mechPLAIN, false), appendCommand(nil, "HELLO", []byte{9, 'x'})))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))

	opt := Options{Logger: testLogger(), HandshakeTimeout: 2 * time.Second, MaxFrame: 1 << 16}
	null, err := Listen("tcp://127.0.0.1:0", opt)
	if err != nil {
		f.Fatal(err)
	}
	opt.PlainServer = NewPasswords(map[string]string{"fuzz": "pw"})
	plain, err := Listen("tcp://127.0.0.1:0", opt)
	if err != nil {
		f.Fatal(err)
	}
	var clients []*Dealer
	for _, r := range []*Router{null, plain} {
		r := r
		go func() { // echo, and keep Gone drained
			for {
				select {
				case m, ok := <-r.Recv():
					if !ok {
						return
					}
					r.Send(m.Peer, m.Body)
				case <-r.Gone():
				}
			}
		}()
		copt := Options{Logger: testLogger(), Identity: "witness"}
		if r == plain {
			copt.PlainClient = &PlainCredentials{"fuzz", "pw"}
		}
		d, err := Dial(r.Endpoint(), copt)
		if err != nil {
			f.Fatal(err)
		}
		clients = append(clients, d)
	}
	f.Cleanup(func() {
		for _, d := range clients {
			d.Close()
		}
		null.Close()
		plain.Close()
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		for i, r := range []*Router{null, plain} {
			c, err := net.Dial("tcp", strings.TrimPrefix(r.Endpoint(), "tcp://"))
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write(data) // may fail once the guard has cut us
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c) // until the server closes
			c.Close()
			// The witness still gets an echo.
			want := []byte{byte(i), byte(len(data))}
			if err := clients[i].Send(want); err != nil {
				t.Fatalf("witness send: %v", err)
			}
			for {
				select {
				case m := <-clients[i].Recv():
					if bytes.Equal(m.Body, want) {
						goto next
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("router %d stopped serving after %x", i, data)
				}
			}
		next:
		}
	})
}
