package publish

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Names that mark a directory as an fmq inbox (inbox.MarkerFile and
// inbox.CacheFile; this package does not import inbox). A directory holding
// either is not published unless Options.PublishInboxes is set: publishing
// a mirror is how a server and a client on one machine fed each other
// until the disk was full (issue 11).
const (
	inboxMarker = ".fmq-inbox"
	inboxCache  = ".fmq-cache"
)

// inboxSet remembers the inboxes met while scanning, by id.
type inboxSet struct {
	mu   sync.Mutex
	byID map[string]string // inbox id -> virtual path of its directory
}

func (s *inboxSet) add(id, vdir string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string]string{}
	}
	s.byID[id] = vdir
}

func (s *inboxSet) find(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[id]
	return v, ok
}

type opener interface {
	Open(string) (*os.File, error)
}

// readInboxID reads the id from an inbox marker ("" if none or unreadable).
func readInboxID(r opener, name string) string {
	id, _ := readInboxMarker(r, name)
	return id
}

// readInboxMarker reads the id from an inbox marker and says whether the
// marker exists (an empty one is being written by its client).
func readInboxMarker(r opener, name string) (id string, exists bool) {
	f, err := r.Open(name)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var m struct {
		ID string `json:"id"`
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	if json.Unmarshal(b, &m) != nil {
		return "", true
	}
	return m.ID, true
}

type osOpener struct{}

func (osOpener) Open(name string) (*os.File, error) { return os.Open(name) }

// InboxOverlap reports whether the fmq inbox with this id (inbox.ID, sent
// by a client in its subscription) is one of the published directories,
// lies inside one, or contains one, as far as this server can tell: the
// mount directories and their parents are checked at once; an inbox deeper
// inside a published tree is known once a scan has met it (it is never
// published either way). The string says where, for the client.
func (t *Tree) InboxOverlap(id string) (string, bool) {
	if id == "" {
		return "", false
	}
	for _, m := range t.mounts {
		if readInboxID(m.root, inboxMarker) == id {
			return "it is the published directory " + m.Alias, true
		}
		for d := filepath.Dir(filepath.Clean(m.Dir)); ; d = filepath.Dir(d) {
			if readInboxID(osOpener{}, filepath.Join(d, inboxMarker)) == id {
				return "it contains the published directory " + m.Alias, true
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if v, ok := t.inboxes.find(id); ok {
		return "it lies inside the published tree, at " + v, true
	}
	return "", false
}
