package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"
)

// Config is the TOML configuration file of serve, sync and relay
// (--config FILE). Every key has a flag of the same name; a flag given on
// the command line wins over the file.
//
//	[log]
//	level = "info"            # debug, info, warn, error
//	json  = false
//
//	[server]
//	bind       = "tcp://*:5670"
//	publish    = ["/srv/photos=/photos", "/srv/docs"]   # DIR[=/alias]
//	passwords  = "/etc/fmq/passwords"                    # login:password lines
//	curve_secret_file = "/etc/fmq/server.key"             # CURVE encryption (fmqrun keygen)
//	curve_clients     = "/etc/fmq/clients"                # allowed client public keys
//	machine    = ""                                      # default: embedded fmq_server.toml
//	rescan     = "5s"
//	settle     = "500ms"
//	[server.settings]
//	chunk_size = 1000000
//
//	[client]
//	connect   = "tcp://server:5670"
//	subscribe = ["/photos"]
//	inbox     = "/var/lib/fmq/inbox"
//	login     = "alice"
//	password_file = "/etc/fmq/alice.pw"
//	curve_server_key  = "/etc/fmq/server.pub"             # or the 40 Z85 characters
//	curve_secret_file = "/etc/fmq/alice.key"              # optional: the client's own key
//	once      = false
//	[client.settings]
//	window = 4000000
type Config struct {
	Log struct {
		Level string `toml:"level"`
		JSON  bool   `toml:"json"`
	} `toml:"log"`
	Server struct {
		Bind           string            `toml:"bind"`
		Publish        []string          `toml:"publish"`
		Passwords      string            `toml:"passwords"`
		ZMTPPasswords  string            `toml:"zmtp_passwords"`
		CurveSecret    string            `toml:"curve_secret_file"`
		CurveClients   string            `toml:"curve_clients"`
		Machine        string            `toml:"machine"`
		Rescan         duration          `toml:"rescan"`
		Settle         duration          `toml:"settle"`
		PublishInboxes bool              `toml:"publish_inboxes"`
		Exclude        []string          `toml:"exclude"`
		ServerID       string            `toml:"server_id"`
		MaxSessions    *int              `toml:"max_sessions"`
		Settings       map[string]any    `toml:"settings"`
		settings       map[string]string `toml:"-"`
	} `toml:"server"`
	Client struct {
		Connect          string         `toml:"connect"`
		Subscribe        []string       `toml:"subscribe"`
		Inbox            string         `toml:"inbox"`
		Login            string         `toml:"login"`
		PasswordFile     string         `toml:"password_file"`
		ZMTPLogin        string         `toml:"zmtp_login"`
		ZMTPPasswordFile string         `toml:"zmtp_password_file"`
		CurveServerKey   string         `toml:"curve_server_key"`
		CurveSecret      string         `toml:"curve_secret_file"`
		Machine          string         `toml:"machine"`
		Once             bool           `toml:"once"`
		Fsync            bool           `toml:"fsync"`
		Delete           bool           `toml:"delete"`
		NumericIDs       bool           `toml:"numeric_ids"`
		Exclude          []string       `toml:"exclude"`
		Settings         map[string]any `toml:"settings"`
	} `toml:"client"`
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// loadConfig reads a config file; unknown keys are errors, with positions
// where TOML gives them.
func loadConfig(path string) (*Config, error) {
	var c Config
	if path == "" {
		return &c, nil
	}
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		return nil, fmt.Errorf("%s: unknown keys: %s (expected keys of [log], [server], [client]; see fmqrun serve --help)", path, strings.Join(keys, ", "))
	}
	return &c, nil
}

// settingStrings turns a TOML settings table into engine overrides.
func settingStrings(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// commonFlags are shared by serve, sync and relay.
type commonFlags struct {
	config   string
	logLevel string
	logJSON  bool
	trace    bool
	wire     bool
	wireHex  bool
	sets     multiFlag
	stream   *syncWriter // the log's writer, shared by --wire lines
	cpuprof  string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "read settings from this TOML file (flags win)")
	fs.StringVar(&c.logLevel, "log-level", "", "log level: debug, info, warn, error (default info)")
	fs.BoolVar(&c.logJSON, "log-json", false, "log as JSON lines")
	fs.BoolVar(&c.trace, "trace", false, "log every event, guard, action and transition (debug level)")
	fs.BoolVar(&c.wire, "wire", false, "print every message as a timestamped C:/S: line with its peer, in the log stream (stderr)")
	fs.BoolVar(&c.wireHex, "wire-hex", false, "with --wire, also dump each frame in hex (first 256 bytes)")
	fs.Var(&c.sets, "set", "override a machine setting: NAME=VALUE (repeatable)")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write a CPU profile (pprof) to this file")
}

// profile starts the CPU profile when asked; the returned func stops it.
func (c *commonFlags) profile() (func(), error) {
	if c.cpuprof == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.cpuprof)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func (c *commonFlags) logger(w io.Writer, cfg *Config) (*slog.Logger, error) {
	lvl := c.logLevel
	if lvl == "" {
		lvl = cfg.Log.Level
	}
	var level slog.Level
	if lvl != "" {
		if err := level.UnmarshalText([]byte(lvl)); err != nil {
			return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", lvl)
		}
	}
	if c.trace {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: userFacing}
	sw := &syncWriter{w: w}
	c.stream = sw
	if c.logJSON || cfg.Log.JSON {
		return slog.New(slog.NewJSONHandler(sw, opts)), nil
	}
	return slog.New(slog.NewTextHandler(sw, opts)), nil
}

// wireTo returns the engine's wire hook for --wire (nil without it):
// lines in the log's stream; peer names a client's server.
func (c *commonFlags) wireTo(peer string) func(peer, line string, body []byte) {
	if !c.wire && !c.wireHex {
		return nil
	}
	t := &wireTracer{out: c.stream, hex: c.wireHex, noPeer: peer}
	return t.trace
}

// overrides merges config settings with --set flags.
func (c *commonFlags) overrides(base map[string]any) (map[string]string, error) {
	out := settingStrings(base)
	for _, s := range c.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want NAME=VALUE", s)
		}
		out[k] = v
	}
	return out, nil
}

// parseMounts reads DIR[=/alias] arguments.
func parseMounts(specs []string) ([]publish.Mount, error) {
	var out []publish.Mount
	for _, s := range specs {
		dir, alias, ok := strings.Cut(s, "=")
		if !ok {
			alias = "/"
		}
		if dir == "" {
			return nil, fmt.Errorf("--publish %q: want DIR[=/alias]", s)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		out = append(out, publish.Mount{Dir: abs, Alias: alias})
	}
	return out, nil
}

// setFlags reports which flags were given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

// pick returns the flag value when given, else the config value, else def.
func pick(given bool, flagV, cfgV, def string) string {
	switch {
	case given:
		return flagV
	case cfgV != "":
		return cfgV
	}
	return def
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// userFacing rewrites log attributes for people: a peer identity that is
// not printable text (libzmq draws 5 random bytes) as short hex, and the
// transport's internal endpoint scheme (tcpg://) as the tcp:// users wrote.
func userFacing(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Any().(type) {
	case string:
		if a.Key == "peer" {
			a.Value = slog.StringValue(peerLabel(v))
		} else if strings.Contains(v, transport.Scheme+"://") {
			a.Value = slog.StringValue(host.DisplayEndpoint(v))
		}
	case error:
		if s := v.Error(); strings.Contains(s, transport.Scheme+"://") {
			a.Value = slog.StringValue(host.DisplayEndpoint(s))
		}
	}
	return a
}

// peerLabel shows a peer identity: printable ones as they are, others as
// "0x" and the hex of their first 8 bytes.
func peerLabel(id string) string {
	printable := len(id) > 0 && len(id) <= 64
	for i := 0; i < len(id) && printable; i++ {
		printable = id[i] > 0x20 && id[i] < 0x7f
	}
	if printable {
		return id
	}
	if id == "" {
		return "-"
	}
	b := []byte(id)
	more := ""
	if len(b) > 8 {
		b, more = b[:8], "..."
	}
	return fmt.Sprintf("0x%x%s", b, more)
}
