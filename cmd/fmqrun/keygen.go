package main

import (
	"context"
	"fmt"

	"github.com/fmq/fmq/transport"
)

func init() {
	register(&command{
		Name:    "keygen",
		Usage:   "NAME",
		Summary: "make a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (public), Z85",
		Run:     runKeygen,
	})
}

func runKeygen(_ context.Context, env *Env, args []string) int {
	fs := newFlags(env, "keygen")
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: fmqrun keygen NAME")
		fmt.Fprintln(env.Stderr, "Writes NAME.key (the CURVE secret key, mode 0600: keep it private) and NAME.pub")
		fmt.Fprintln(env.Stderr, "(the public key, to give to peers), each one line of Z85 as libzmq and pyzmq use.")
		fmt.Fprintln(env.Stderr, "Existing files are never overwritten.")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 || pos[0] == "" {
		fs.Usage()
		return 2
	}
	kp, err := transport.NewCurveKeyPair()
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun keygen:", err)
		return 1
	}
	sec, pub, err := transport.WriteCurveKeyPair(kp, pos[0])
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun keygen:", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "secret key: %s (mode 0600, keep it private)\npublic key: %s\n%s\n", sec, pub, kp.Public)
	return 0
}
