#!/usr/bin/env python3
"""libzmq peer for transport's interop tests (Debian python3-zmq).

  interop.py router [--plain USER:PASS] [--heartbeat MS]
                    [--curve-secret KEY [--curve-clients KEY,KEY...]]
      Bind a ROUTER on 127.0.0.1, print "ENDPOINT <ep>", then answer every
      message with b"echo:" + body, and every b"whoami" with the sender's
      identity. Exit on b"quit" or after 30 s.

  interop.py dealer ENDPOINT [--plain USER:PASS] [--identity ID] [--count N] [--heartbeat MS]
                    [--curve-server-key KEY [--curve-secret KEY]]
      Connect a DEALER, send N messages (sizes up to 100 kB), expect each
      echoed back unchanged, print "OK <n>". With --heartbeat, libzmq PINGs
      every MS and gives up after 2*MS without a PONG; the script idles
      6*MS between messages. If the handshake fails with an
      authentication error print "AUTH-FAILED <status>"; on timeout "TIMEOUT".

  CURVE keys are Z85. A router with --curve-secret is a CURVE server (any
  client, or only --curve-clients through a ZAP handler); a dealer with
  --curve-server-key a CURVE client (a fresh key pair unless --curve-secret).
"""
import argparse
import sys
import time

import zmq
import zmq.auth.thread


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["router", "dealer"])
    ap.add_argument("endpoint", nargs="?")
    ap.add_argument("--plain")
    ap.add_argument("--identity")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--heartbeat", type=int, default=0)
    ap.add_argument("--curve-secret")
    ap.add_argument("--curve-clients")
    ap.add_argument("--curve-server-key")
    a = ap.parse_args()
    ctx = zmq.Context()
    try:
        return router(ctx, a) if a.mode == "router" else dealer(ctx, a)
    finally:
        ctx.destroy(linger=0)


def router(ctx, a):
    auth = None
    s = ctx.socket(zmq.ROUTER)
    s.linger = 0
    if a.plain:
        user, pw = a.plain.split(":", 1)
        auth = zmq.auth.thread.ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_plain(domain="*", passwords={user: pw})
        s.plain_server = True
    if a.curve_secret:
        if a.curve_clients:
            allowed = set(k.encode() for k in a.curve_clients.split(","))

            class Keys:
                def callback(self, domain, key):
                    return key in allowed

            auth = zmq.auth.thread.ThreadAuthenticator(ctx)
            auth.start()
            auth.configure_curve_callback(domain="*", credentials_provider=Keys())
        s.curve_secretkey = a.curve_secret.encode()
        s.curve_publickey = zmq.curve_public(a.curve_secret.encode())
        s.curve_server = True
    if a.heartbeat:
        s.setsockopt(zmq.HEARTBEAT_IVL, a.heartbeat)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    print("ENDPOINT tcp://127.0.0.1:%d" % port, flush=True)
    deadline = time.time() + 30
    try:
        while time.time() < deadline:
            if not s.poll(200):
                continue
            frames = s.recv_multipart()
            ident, body = frames[0], frames[-1]
            if body == b"quit":
                print("QUIT", flush=True)
                return 0
            if body == b"whoami":
                s.send_multipart([ident, ident])
            else:
                s.send_multipart([ident, b"echo:" + body])
        print("TIMEOUT", flush=True)
        return 1
    finally:
        s.close()
        if auth:
            auth.stop()


def dealer(ctx, a):
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    if a.identity:
        s.identity = a.identity.encode()
    if a.plain:
        user, pw = a.plain.split(":", 1)
        s.plain_username = user.encode()
        s.plain_password = pw.encode()
    if a.curve_server_key:
        if a.curve_secret:
            sec = a.curve_secret.encode()
            pub = zmq.curve_public(sec)
        else:
            pub, sec = zmq.curve_keypair()
        s.curve_serverkey = a.curve_server_key.encode()
        s.curve_publickey = pub
        s.curve_secretkey = sec
    if a.heartbeat:
        # Heartbeat, and drop the server if it stays silent (no PONG) for
        # 10 intervals (a loaded machine may delay one PONG by several
        # intervals); we idle 12 intervals between messages, so a server
        # that never answers is dropped and the next message fails.
        s.setsockopt(zmq.HEARTBEAT_IVL, a.heartbeat)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10 * a.heartbeat)
    mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    s.connect(a.endpoint)
    deadline = time.time() + 10
    # Wait for the handshake outcome.
    while True:
        if time.time() > deadline:
            print("TIMEOUT handshake", flush=True)
            return 1
        if not mon.poll(100):
            continue
        ev = zmq.utils.monitor.recv_monitor_message(mon)
        if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            print("AUTH-FAILED %d" % ev["value"], flush=True)
            return 0
        if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            print("PROTOCOL-FAILED %d" % ev["value"], flush=True)
            return 0
        if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            break
    for i in range(a.count):
        body = bytes([i % 256]) * (i * 10007 % 100000)
        s.send(body)
        if not s.poll(5000):
            print("TIMEOUT message %d" % i, flush=True)
            return 1
        got = s.recv()
        if got != body:
            print("MISMATCH %d: %d bytes, want %d" % (i, len(got), len(body)), flush=True)
            return 1
        if a.heartbeat:
            time.sleep(a.heartbeat * 12 / 1000.0)
    print("OK %d" % a.count, flush=True)
    return 0


if __name__ == "__main__":
    import zmq.utils.monitor  # noqa: F401
    sys.exit(main())
