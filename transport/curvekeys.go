package transport

import (
	"bufio"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// CurveKey is a CURVE (Curve25519) public or secret key: 32 bytes, written
// as 40 characters of Z85 like libzmq's zmq_curve_keypair.
type CurveKey [32]byte

// String returns the key's Z85 form.
func (k CurveKey) String() string {
	s, _ := Z85Encode(k[:])
	return s
}

// ParseCurveKey parses a key's 40-character Z85 form.
func ParseCurveKey(s string) (CurveKey, error) {
	var k CurveKey
	if len(s) != 40 {
		return k, fmt.Errorf("CURVE key must be 40 characters of Z85, got %d", len(s))
	}
	b, err := Z85Decode(s)
	if err != nil {
		return k, fmt.Errorf("CURVE key: %v", err)
	}
	copy(k[:], b)
	return k, nil
}

// CurveKeyPair is a permanent (long-term) CURVE key pair.
type CurveKeyPair struct {
	Public, Secret CurveKey
}

// NewCurveKeyPair draws a fresh key pair (the keys zmq_curve_keypair makes).
func NewCurveKeyPair() (CurveKeyPair, error) {
	var kp CurveKeyPair
	if _, err := io.ReadFull(crand.Reader, kp.Secret[:]); err != nil {
		return kp, err
	}
	kp.Public = curvePublic(kp.Secret)
	return kp, nil
}

// CurveKeyPairFromSecret derives the public key of secret.
func CurveKeyPairFromSecret(secret CurveKey) CurveKeyPair {
	return CurveKeyPair{Public: curvePublic(secret), Secret: secret}
}

func curvePublic(secret CurveKey) CurveKey {
	var pub CurveKey
	p, err := curve25519.X25519(secret[:], curve25519.Basepoint)
	if err != nil {
		// Only a low-order point can fail, and the base point is not one.
		panic(err)
	}
	copy(pub[:], p)
	return pub
}

// KeyFileError is a problem with a key file, at a line when Line > 0.
type KeyFileError struct {
	Path string
	Line int
	Msg  string
	Err  error // a sentinel such as ErrKeyFileMode, or nil
}

func (e *KeyFileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// keyLines returns the key lines of a key file: the first field of each
// line that is not blank or a '#' comment (the rest of a line is a label).
func keyLines(r io.Reader, path string) ([]string, []int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	var keys []string
	var lines []int
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		keys = append(keys, f[0])
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, &KeyFileError{Path: path, Msg: err.Error()}
	}
	return keys, lines, nil
}

// oneKey parses a file holding exactly one key.
func oneKey(r io.Reader, path string) (CurveKey, error) {
	keys, lines, err := keyLines(r, path)
	if err != nil {
		return CurveKey{}, err
	}
	switch len(keys) {
	case 0:
		return CurveKey{}, &KeyFileError{Path: path, Msg: "no key in the file (want one line of 40 Z85 characters)"}
	case 1:
	default:
		return CurveKey{}, &KeyFileError{Path: path, Line: lines[1], Msg: "more than one key in the file"}
	}
	k, err := ParseCurveKey(keys[0])
	if err != nil {
		return k, &KeyFileError{Path: path, Line: lines[0], Msg: err.Error()}
	}
	return k, nil
}

// ErrKeyFileMode is wrapped by LoadCurveSecretFile for a secret key file
// that other users may read or write.
var ErrKeyFileMode = errors.New("secret key file is accessible by other users")

// LoadCurveSecretFile reads a secret key file (one line of Z85, as written
// by `fmqrun keygen`) and returns the key pair. A file whose permissions let
// anyone but its owner read or write it is refused (chmod 600 it).
func LoadCurveSecretFile(path string) (CurveKeyPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return CurveKeyPair{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return CurveKeyPair{}, err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return CurveKeyPair{}, &KeyFileError{Path: path, Msg: fmt.Sprintf("%v: mode %#o, want 0600 (chmod 600 %s)", ErrKeyFileMode, m, path), Err: ErrKeyFileMode}
	}
	k, err := oneKey(f, path)
	if err != nil {
		return CurveKeyPair{}, err
	}
	return CurveKeyPairFromSecret(k), nil
}

// Unwrap lets errors.Is find ErrKeyFileMode.
func (e *KeyFileError) Unwrap() error { return e.Err }

// LoadCurvePublicKey accepts a public key as its 40 Z85 characters, or the
// path of a file holding one (a NAME.pub written by `fmqrun keygen`).
// An existing file wins: a path can be 40 Z85 characters too.
func LoadCurvePublicKey(keyOrPath string) (CurveKey, error) {
	f, err := os.Open(keyOrPath)
	if err != nil {
		if k, perr := ParseCurveKey(keyOrPath); perr == nil {
			return k, nil
		}
		return CurveKey{}, fmt.Errorf("CURVE public key %q: neither 40 Z85 characters nor a readable file: %v", keyOrPath, err)
	}
	defer f.Close()
	return oneKey(f, keyOrPath)
}

// CurveKeySet is a set of allowed client public keys.
type CurveKeySet struct {
	keys map[CurveKey]struct{}
}

// NewCurveKeySet builds a set from keys.
func NewCurveKeySet(keys ...CurveKey) *CurveKeySet {
	s := &CurveKeySet{keys: map[CurveKey]struct{}{}}
	for _, k := range keys {
		s.keys[k] = struct{}{}
	}
	return s
}

// Len returns the number of keys.
func (s *CurveKeySet) Len() int { return len(s.keys) }

// Contains reports whether k is in the set.
func (s *CurveKeySet) Contains(k CurveKey) bool {
	_, ok := s.keys[k]
	return ok
}

// LoadCurveKeySet reads a file of client public keys: one Z85 key per line
// (anything after it on the line is a label), blank lines and '#' comments
// ignored. Every bad line is reported, as path:line.
func LoadCurveKeySet(path string) (*CurveKeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseCurveKeySet(f, path)
}

// ParseCurveKeySet parses key-set text; name is used in error messages.
func ParseCurveKeySet(r io.Reader, name string) (*CurveKeySet, error) {
	keys, lines, err := keyLines(r, name)
	if err != nil {
		return nil, err
	}
	s := NewCurveKeySet()
	var errs []error
	for i, ks := range keys {
		k, err := ParseCurveKey(ks)
		if err != nil {
			errs = append(errs, &KeyFileError{Path: name, Line: lines[i], Msg: err.Error()})
			continue
		}
		s.keys[k] = struct{}{}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return s, nil
}

// WriteCurveKeyPair writes dir/name.key (the secret key, mode 0600) and
// dir/name.pub (the public key), each one line of Z85. Existing files are
// never overwritten.
func WriteCurveKeyPair(kp CurveKeyPair, base string) (secretPath, publicPath string, err error) {
	secretPath, publicPath = base+".key", base+".pub"
	for _, p := range []string{secretPath, publicPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s already exists (not overwritten)", p)
		}
	}
	if err := writeNew(secretPath, kp.Secret.String()+"\n", 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(publicPath, kp.Public.String()+"\n", 0o644); err != nil {
		os.Remove(secretPath)
		return "", "", err
	}
	return filepath.Clean(secretPath), filepath.Clean(publicPath), nil
}

func writeNew(path, text string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // exactly mode, whatever the umask
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
