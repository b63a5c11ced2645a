//go:build !linux

package testutil

import "io"

// discard drops n bytes of the stream (read into the reused buffer).
func (z *ZMTPDealer) discard(n uint64) error {
	if cap(z.trunc) == 0 {
		z.trunc = make([]byte, 1<<20)
	}
	for n > 0 {
		k, err := io.ReadFull(z.br, z.trunc[:min(n, uint64(len(z.trunc)))])
		if err != nil {
			return err
		}
		n -= uint64(k)
	}
	return nil
}
