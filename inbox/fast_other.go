//go:build !linux

package inbox

// Elsewhere than on Linux every file operation goes through os.Root (see
// fast_linux.go for the descriptor cache used there).

type fastDirs struct{}

type fastState struct{}

func newFastDirs() *fastDirs { return nil }

func (c *fastDirs) forget(string) {}

func (c *fastDirs) closeAll() {}

func (p *Partial) createFast() (bool, error) { return false, nil }

func (p *Partial) finishFast(map[string]string, string) (bool, error) { return false, nil }

func (p *Partial) releaseFast() {}
