package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/fmq/fmq/transport"
)

// serverCurve builds a CURVE server from a secret key file and an optional
// file of allowed client public keys ("" and "": no CURVE).
func serverCurve(secretFile, clientsFile string) (*transport.CurveServer, error) {
	if secretFile == "" {
		if clientsFile != "" {
			return nil, errors.New("--curve-clients needs --curve-secret-file (the server's CURVE secret key)")
		}
		return nil, nil
	}
	kp, err := transport.LoadCurveSecretFile(secretFile)
	if err != nil {
		return nil, err
	}
	cs := &transport.CurveServer{Keys: kp}
	if clientsFile != "" {
		if cs.Clients, err = transport.LoadCurveKeySet(clientsFile); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// clientCurve builds a CURVE client from the server's public key (Z85 or a
// .pub file) and an optional secret key file of our own; without one, a key
// pair is drawn here, once, so every reconnection presents the same key.
func clientCurve(serverKey, secretFile string) (*transport.CurveClient, error) {
	if serverKey == "" {
		if secretFile != "" {
			return nil, errors.New("--curve-secret-file needs --curve-server-key (the server's CURVE public key)")
		}
		return nil, nil
	}
	sk, err := transport.LoadCurvePublicKey(serverKey)
	if err != nil {
		return nil, fmt.Errorf("--curve-server-key: %w", err)
	}
	cc := &transport.CurveClient{ServerKey: sk}
	if secretFile != "" {
		if cc.Keys, err = transport.LoadCurveSecretFile(secretFile); err != nil {
			return nil, err
		}
	} else if cc.Keys, err = transport.NewCurveKeyPair(); err != nil {
		return nil, err
	}
	return cc, nil
}

// serverCurveFlags are serve's (and relay's downstream) CURVE flags.
type serverCurveFlags struct{ secretFile, clients string }

func (f *serverCurveFlags) register(fs *flag.FlagSet, prefix, side string) {
	fs.StringVar(&f.secretFile, prefix+"curve-secret-file", "", side+"encrypt with ZeroMQ CURVE: the server's secret key file (fmqrun keygen NAME makes NAME.key and NAME.pub; give clients NAME.pub)")
	fs.StringVar(&f.clients, prefix+"curve-clients", "", side+"with CURVE, let in only the client public keys listed in this file (one Z85 key per line; default: any client)")
}
