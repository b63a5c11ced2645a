package host

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fmq/fmq/publish"
)

// BenchmarkServerMachines serves the same trees from two servers in one
// process, interleaved run by run, to a sink client (a separate process
// that reads and discards): the embedded fmq_server.toml, whose machine
// sends every CHEEZBURGER itself (on chunk: send CHEEZBURGER ... = peer.Next...),
// and testdata/fmq_server_gosend.toml, the machine before it, whose Go
// action "deliver chunks" sent them. It reports each one's rate and server
// CPU per GiB, and machine/gosend as the rate ratio (1.0 = no loss).
//
//	go test -run '^$' -bench ServerMachines -benchtime 5x ./host/
func BenchmarkServerMachines(b *testing.B) {
	for _, wl := range []struct {
		name          string
		large, smalls int
	}{
		{"tree", 32 << 20, 1000}, // one large file and many of 4 KiB
		{"large", 256 << 20, 0},
		{"small", 0, 4000}, // per-message costs, magnified
	} {
		b.Run(wl.name, func(b *testing.B) {
			pub := b.TempDir()
			total := int64(wl.large + 4<<10*wl.smalls)
			old := time.Now().Add(-time.Hour)
			put := func(name string, n int) {
				data := make([]byte, n)
				rand.Read(data)
				p := filepath.Join(pub, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					b.Fatal(err)
				}
				os.Chtimes(p, old, old)
			}
			put("large.bin", wl.large)
			for i := 0; i < wl.smalls; i++ {
				put(fmt.Sprintf("small/%02d/f%04d.bin", i%50, i), 4<<10)
			}
			names := []string{"machine", "gosend"}
			var eps [2]string
			for k, file := range []string{"", "testdata/fmq_server_gosend.toml"} {
				srv, err := StartServer(ServerConfig{Machine: file, Publish: []publish.Mount{{Dir: pub, Alias: "/"}},
					Bind: "tcp://127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				defer srv.Close()
				eps[k] = srv.Endpoint()
			}
			var wall, cpu [2]time.Duration
			one := func(k int) {
				out := &bytes.Buffer{}
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), sinkEnv+"="+eps[k])
				cmd.Stdout, cmd.Stderr = out, os.Stderr
				self0, _ := cpuSelfChildren()
				t0 := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s sink: %v", names[k], err)
				}
				wall[k] += time.Since(t0)
				self1, _ := cpuSelfChildren()
				cpu[k] += self1 - self0
				if got, err := strconv.ParseInt(string(bytes.TrimSpace(out.Bytes())), 10, 64); err != nil || got != total {
					b.Fatalf("%s sink received %q bytes, want %d", names[k], out.String(), total)
				}
			}
			one(0) // warm up both (page cache, digests)
			one(1)
			wall, cpu = [2]time.Duration{}, [2]time.Duration{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					one(0)
					one(1)
				} else {
					one(1)
					one(0)
				}
			}
			gib := float64(total) * float64(b.N) / (1 << 30)
			rate := func(k int) float64 { return float64(total) * float64(b.N) / (1 << 20) / wall[k].Seconds() }
			for k, n := range names {
				b.ReportMetric(rate(k), n+"-MiB/s")
				b.ReportMetric(cpu[k].Seconds()/gib, n+"-cpu-s/GiB")
			}
			b.ReportMetric(rate(0)/rate(1), "machine/gosend")
		})
	}
}
