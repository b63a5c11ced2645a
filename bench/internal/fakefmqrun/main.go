// Command fakefmqrun is a TEST DOUBLE of the `fmqrun serve` / `fmqrun sync`
// command-line contract, used only by the bench harness's own tests to drive
// its fmq code paths (server readiness, JSON report, kill-at-half and resume,
// peak RSS) before the real commands exist. It does not speak FileMQ: it
// copies a folder over one plain TCP connection per client.
//
// Wire format (line-oriented header, then raw bytes):
//
//	server -> client: "F <size> <path>\n" per published file, then "E\n"
//	client -> server: "O <offset>\n" per file, same order (offset = size: skip)
//	server -> client: the bytes [offset, size) of each file, in order
//
// The client writes each file into the hidden partial .NAME.fmqpart as data
// arrives and renames it when complete, so SIGKILL leaves a resumable partial.
// FAKEFMQ_CLIENT_RATE (bytes per second) slows the client down for tests.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fmq/fmq/internal/vpath"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fakefmqrun serve|sync [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "sync":
		err = syncCmd(os.Args[2:])
	case "keygen":
		// CURVE keys: the fake does not encrypt; it only writes the files.
		if len(os.Args) != 3 {
			err = errors.New("usage: fakefmqrun keygen NAME")
			break
		}
		if err = os.WriteFile(os.Args[2]+".key", []byte("fake secret\n"), 0o600); err == nil {
			err = os.WriteFile(os.Args[2]+".pub", []byte("fake public\n"), 0o644)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakefmqrun:", err)
		os.Exit(1)
	}
}

type entry struct {
	rel  string
	size int64
}

func scan(dir string) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
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
		rel, _ := filepath.Rel(dir, p)
		out = append(out, entry{rel: filepath.ToSlash(rel), size: info.Size()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, err
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	publish := fs.String("publish", "", "DIR[=/alias] to publish")
	bind := fs.String("bind", "", "tcp://127.0.0.1:PORT")
	epFile := fs.String("print-endpoint", "", "write the endpoint to this file when ready")
	fs.String("curve-secret-file", "", "accepted, ignored (no encryption in the fake)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, _, _ := strings.Cut(*publish, "=")
	addr, ok := strings.CutPrefix(*bind, "tcp://")
	if dir == "" || !ok {
		return errors.New("serve needs --publish DIR and --bind tcp://HOST:PORT")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ep := "tcp://" + ln.Addr().String() + "\n"
	if *epFile != "" {
		tmp := *epFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ep), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *epFile); err != nil {
			return err
		}
	} else {
		fmt.Print(ep)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			if err := serveConn(c, dir); err != nil {
				fmt.Fprintln(os.Stderr, "fakefmqrun serve:", err)
			}
		}()
	}
}

func serveConn(c net.Conn, dir string) error {
	files, err := scan(dir)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(c, 1<<20)
	for _, f := range files {
		fmt.Fprintf(bw, "F %d %s\n", f.size, f.rel)
	}
	bw.WriteString("E\n")
	if err := bw.Flush(); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	offsets := make([]int64, len(files))
	for i := range files {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if _, err := fmt.Sscanf(line, "O %d\n", &offsets[i]); err != nil {
			return fmt.Errorf("bad offset line %q", line)
		}
	}
	buf := make([]byte, 1<<20)
	for i, f := range files {
		if offsets[i] >= f.size {
			continue
		}
		in, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.rel)))
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(struct{ io.Writer }{c}, io.NewSectionReader(in, offsets[i], f.size-offsets[i]), buf)
		in.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type report struct {
	Files        int64 `json:"files"`
	Bytes        int64 `json:"bytes"`
	ElapsedMs    int64 `json:"elapsed_ms"`
	FirstByteMs  int64 `json:"first_byte_ms"`
	ResumedBytes int64 `json:"resumed_bytes"`
}

func syncCmd(args []string) error {
	start := time.Now()
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	connect := fs.String("connect", "", "tcp://HOST:PORT")
	fs.String("subscribe", "/", "path to subscribe to")
	inbox := fs.String("inbox", "", "folder to sync into")
	fs.Bool("once", false, "exit when in sync")
	asJSON := fs.Bool("json", false, "print a JSON report at the end")
	fs.String("curve-server-key", "", "accepted, ignored (no encryption in the fake)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, ok := strings.CutPrefix(*connect, "tcp://")
	if !ok || *inbox == "" {
		return errors.New("sync needs --connect tcp://HOST:PORT and --inbox DIR")
	}
	var rate float64
	if s := os.Getenv("FAKEFMQ_CLIENT_RATE"); s != "" {
		rate, _ = strconv.ParseFloat(s, 64)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 1<<20)
	var files []entry
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "E\n" {
			break
		}
		var e entry
		sizeStr, rel, ok := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "F "), " ")
		if e.size, err = strconv.ParseInt(sizeStr, 10, 64); err != nil || !ok || vpath.Problem("/"+rel) != "" {
			return fmt.Errorf("bad file line %q", line)
		}
		e.rel = rel
		files = append(files, e)
	}
	var rep report
	offsets := make([]int64, len(files))
	var hdr strings.Builder
	for i, f := range files {
		target := filepath.Join(*inbox, filepath.FromSlash(f.rel))
		if st, err := os.Stat(target); err == nil && st.Size() == f.size {
			offsets[i] = f.size
		} else if st, err := os.Stat(partial(target)); err == nil {
			offsets[i] = min(st.Size(), f.size)
			rep.ResumedBytes += offsets[i]
		}
		fmt.Fprintf(&hdr, "O %d\n", offsets[i])
	}
	if _, err := io.WriteString(c, hdr.String()); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i, f := range files {
		if offsets[i] >= f.size {
			continue
		}
		target := filepath.Join(*inbox, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(partial(target), os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		if _, err := out.Seek(offsets[i], io.SeekStart); err != nil {
			return err
		}
		left := f.size - offsets[i]
		for left > 0 {
			n, err := br.Read(buf[:min(int64(len(buf)), left)])
			if n > 0 {
				if rep.Bytes == 0 {
					rep.FirstByteMs = max(1, time.Since(start).Milliseconds())
				}
				if _, werr := out.Write(buf[:n]); werr != nil {
					return werr
				}
				rep.Bytes += int64(n)
				left -= int64(n)
				if rate > 0 {
					if ahead := time.Duration(float64(rep.Bytes)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
						time.Sleep(ahead)
					}
				}
			}
			if err != nil && left > 0 {
				return fmt.Errorf("%s: %w", f.rel, err)
			}
		}
		if err := out.Close(); err != nil {
			return err
		}
		if err := os.Rename(partial(target), target); err != nil {
			return err
		}
		rep.Files++
	}
	rep.ElapsedMs = time.Since(start).Milliseconds()
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	return nil
}

func partial(target string) string {
	dir, base := filepath.Split(target)
	return filepath.Join(dir, "."+base+".fmqpart")
}
