package conform

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/publish"
)

// TraceOptions control FromTrace.
type TraceOptions struct {
	// Role is the side the script will play (default: the client): its
	// lines become sends, the other side's expectations.
	Role codec.Direction
	// Protocol is written in the header when not "filemq".
	Protocol string
	// Loose drops hash fields (headers, options, cache) from expectations.
	Loose bool
	// Header lines to put first (server settings, accounts, ...).
	Header []string
	// Files are appended as txtar sections (fixtures).
	Files []File
}

// FromTrace turns a wire trace (lines "C: NAME field=value ..." as the
// interpreter's Wire option prints them, or "TIME peer=ID C: ..." as
// `fmqrun run --wire` does) into a
// script. Lines that are not messages are kept as comments; received
// malformed frames, whose bytes a trace does not hold, become comments too.
// The result is checked by Parse before it is returned.
func FromTrace(r io.Reader, opt TraceOptions) ([]byte, error) {
	if opt.Role == 0 {
		opt.Role = codec.FromClient
	}
	var b strings.Builder
	b.WriteString("# Recorded from a wire trace (fmqrun script).\n")
	if opt.Protocol != "" && opt.Protocol != "filemq" {
		fmt.Fprintf(&b, "protocol %s\n", opt.Protocol)
	}
	if opt.Role == codec.FromServer {
		b.WriteString("role server\n")
	}
	for _, h := range opt.Header {
		b.WriteString(h + "\n")
	}
	b.WriteString("\n")
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	own := "C:"
	if opt.Role == codec.FromServer {
		own = "S:"
	}
	msgs := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		line = stripWirePrefix(line)
		dir, rest, _ := strings.Cut(line, " ")
		if dir != "C:" && dir != "S:" {
			fmt.Fprintf(&b, "# %s\n", line)
			continue
		}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "malformed") {
			fmt.Fprintf(&b, "# %s   (bytes not recorded: write it as %s raw HEX)\n", line, dir)
			continue
		}
		if dir != own {
			if opt.Loose {
				line = dir + " " + dropHashes(rest)
			} else {
				line = dir + " " + loosenVolatile(rest)
			}
		}
		if dir == own && strings.Contains(rest, " bytes>") {
			b.WriteString("# the next line's chunk content was not recorded: zeros are sent\n")
		}
		b.WriteString(line + "\n")
		msgs++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if msgs == 0 {
		return nil, errors.New("the trace holds no C:/S: message lines")
	}
	if opt.Role == codec.FromClient {
		b.WriteString("! S: * within 300ms\n")
	}
	for _, f := range opt.Files {
		fmt.Fprintf(&b, "-- %s --\n", f.Name)
		b.Write(f.Data)
		if len(f.Data) > 0 && f.Data[len(f.Data)-1] != '\n' {
			b.WriteString("\n")
		}
	}
	out := []byte(b.String())
	if _, err := Parse("recorded.txtar", out); err != nil {
		return out, fmt.Errorf("the recorded script does not parse: %w", err)
	}
	return out, nil
}

// dropHashes removes hash-valued fields (name={...}) from a message line.
func dropHashes(rest string) string {
	toks, err := tokenize(rest)
	if err != nil {
		return rest
	}
	var keep []string
	for _, t := range toks {
		if _, v, ok := strings.Cut(t.text, "="); ok && strings.HasPrefix(v, "{") {
			continue
		}
		keep = append(keep, t.text)
	}
	return strings.Join(keep, " ")
}

// volatileKeys are hash entries whose values depend on when and where a
// file was made (a file's mtime, the origin derived from its directory's
// path), not on its content: a replay against fixtures written afresh
// cannot reproduce them, so expectations check their form only.
var volatileKeys = map[string]string{"MTIME": `^[0-9]+$`, "ORIGIN": `^[0-9a-f]{32}$`, "UID": `^[0-9]+$`, "GID": `^[0-9]+$`}

// loosenVolatile rewrites an expected hash field that holds a volatile key
// into one matcher per entry (hash.KEY="V"), the volatile ones by pattern.
// Other fields stay as recorded.
func loosenVolatile(rest string) string {
	toks, err := tokenize(rest)
	if err != nil {
		return rest
	}
	out := make([]string, 0, len(toks))
	for _, t := range toks {
		name, v, ok := strings.Cut(t.text, "=")
		if !ok || !strings.HasPrefix(v, "{") {
			out = append(out, t.text)
			continue
		}
		val, err := parseValue(v, nil)
		if err != nil || !hasVolatile(val.hash) {
			out = append(out, t.text)
			continue
		}
		keys := make([]string, 0, len(val.hash))
		for k := range val.hash {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if re, ok := volatileKeys[k]; ok {
				out = append(out, fmt.Sprintf("%s.%s=~%s", name, k, re))
			} else {
				out = append(out, fmt.Sprintf("%s.%s=%s", name, k, strconv.Quote(val.hash[k])))
			}
		}
	}
	return strings.Join(out, " ")
}

func hasVolatile(h map[string]string) bool {
	for k := range h {
		if _, ok := volatileKeys[k]; ok {
			return true
		}
	}
	return false
}

// RecordOptions control Record.
type RecordOptions struct {
	Publish    string   // directory the server publishes as "/"
	Subscribe  []string // client subscriptions (default "/")
	Settings   map[string]string
	Timeout    time.Duration // bound for the sync (default 30s)
	MaxFixture int64         // largest file embedded as a fixture (default 64 KiB)
	Logger     *slog.Logger
}

// Record runs fmq's server on a directory and fmq's client against it
// until the client has synced, recording the server's wire trace, and
// returns it as a client-role script with the directory as fixtures, so it
// replays against any server publishing the same files.
func Record(ctx context.Context, opt RecordOptions) ([]byte, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 30 * time.Second
	}
	if opt.MaxFixture == 0 {
		opt.MaxFixture = 64 << 10
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	var files []File
	err := filepath.WalkDir(opt.Publish, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != opt.Publish {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > opt.MaxFixture {
			return fmt.Errorf("%s: %d bytes, larger than a fixture may be (%d)", p, info.Size(), opt.MaxFixture)
		}
		rel, _ := filepath.Rel(opt.Publish, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, File{Name: "pub/" + filepath.ToSlash(rel), Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for _, f := range files {
		if len(f.Data) > 0 && f.Data[len(f.Data)-1] != '\n' {
			return nil, fmt.Errorf("%s: a fixture must end with a newline (txtar)", f.Name)
		}
	}

	inbox, err := os.MkdirTemp("", "fmq-record-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(inbox)
	var mu syncLines
	srv, err := host.StartServer(host.ServerConfig{
		Publish: []publish.Mount{{Dir: opt.Publish, Alias: "/"}},
		Bind:    "tcp://127.0.0.1:0",
		Logger:  opt.Logger,
		Wire:    mu.add,
	})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	cl, err := host.StartClient(host.ClientConfig{
		Connect:   srv.Endpoint(),
		Inbox:     inbox,
		Subscribe: opt.Subscribe,
		Settings:  opt.Settings,
		Once:      true,
		Logger:    opt.Logger,
	})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	werr := cl.Wait(wctx)
	cl.Close()
	if werr != nil {
		return nil, fmt.Errorf("recording: the client did not finish: %w", werr)
	}
	// the client's KTHXBAI reaches the server shortly after the client stops
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && !strings.HasPrefix(mu.last(), "C: KTHXBAI") {
		time.Sleep(10 * time.Millisecond)
	}
	return FromTrace(strings.NewReader(mu.text()), TraceOptions{Files: files})
}

// syncLines collects trace lines from the engine goroutine.
type syncLines struct {
	mu    sync.Mutex
	lines []string
}

func (s *syncLines) add(l string) {
	s.mu.Lock()
	s.lines = append(s.lines, l)
	s.mu.Unlock()
}

func (s *syncLines) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lines) == 0 {
		return ""
	}
	return s.lines[len(s.lines)-1]
}

func (s *syncLines) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n") + "\n"
}

// wirePrefix is what fmqrun --wire puts before a message line: a
// timestamp and the peer.
var wirePrefix = regexp.MustCompile(`^\d\d:\d\d:\d\d(\.\d+)? peer=("(?:[^"\\]|\\.)*"|\S+) `)

// stripWirePrefix drops a --wire line's timestamp and peer.
func stripWirePrefix(line string) string {
	if loc := wirePrefix.FindStringIndex(line); loc != nil {
		return line[loc[1]:]
	}
	return line
}
