// Package codec defines what every generated protocol codec provides and a
// registry of codecs by protocol name. It is hand-written and knows no
// protocol: the generator (internal/codecgen, run by `go generate ./...`)
// turns a message model in spec/*.toml into a package that implements
// Protocol and registers itself here from init.
//
// The interpreter (interp/) and the conformance runner work only through
// these interfaces: they look messages up by name or id, build them, set
// and read fields by name, encode and decode frames.
package codec

import (
	"fmt"
	"sort"
	"sync"
)

// Direction says which role may send a message.
type Direction uint8

const (
	FromClient Direction = 1 << iota
	FromServer
	FromEither = FromClient | FromServer
)

func (d Direction) String() string {
	switch d {
	case FromClient:
		return "client"
	case FromServer:
		return "server"
	case FromEither:
		return "either"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// FieldType is the wire type of a field, as named in a message model.
type FieldType uint8

const (
	Number1 FieldType = iota + 1 // 1 octet
	Number2                      // 2 octets, big-endian
	Number4                      // 4 octets, big-endian
	Number8                      // 8 octets, big-endian
	String                       // 1-octet length + up to 255 octets
	Longstr                      // 4-octet length + octets
	Hash                         // 4-octet count, count x (key string, value longstr)
	Chunk                        // 4-octet length + octets, aliasing the frame on decode
	Strings                      // 4-octet count, count x longstr
	Octets                       // fixed number of octets (FieldInfo.Size)
)

var fieldTypeNames = [...]string{"", "number1", "number2", "number4", "number8", "string", "longstr", "hash", "chunk", "strings", "octets"}

func (t FieldType) String() string {
	if int(t) < len(fieldTypeNames) && t != 0 {
		return fieldTypeNames[t]
	}
	return fmt.Sprintf("FieldType(%d)", uint8(t))
}

// ParseFieldType maps a model type name ("number2", "longstr", ...) to a FieldType.
func ParseFieldType(s string) (FieldType, bool) {
	for i, n := range fieldTypeNames {
		if i > 0 && n == s {
			return FieldType(i), true
		}
	}
	return 0, false
}

// GoValue types by field type, as returned by Message.Get and accepted by Message.Set:
// number1 uint8, number2 uint16, number4 uint32, number8 uint64, string and longstr
// string, hash map[string]string, chunk and octets []byte, strings []string.

// FieldInfo describes one field of a message.
type FieldInfo struct {
	Name  string    // model name, lower case ("protocol", "credit")
	Type  FieldType // wire type
	Const any       // non-nil for a constant field: the value every frame must carry
	Size  int       // for Octets: the fixed size
	Doc   string
}

// MessageInfo describes one message of a protocol.
type MessageInfo struct {
	Name   string // UPPER-KEBAB ("CHEEZBURGER", "HUGZ-OK")
	ID     uint8
	From   Direction
	Doc    string
	Fields []FieldInfo
	New    func() Message // a fresh message with constants set
}

// Field returns the named field's description.
func (mi *MessageInfo) Field(name string) (FieldInfo, bool) {
	for _, f := range mi.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return FieldInfo{}, false
}

// Message is one decoded or to-be-encoded protocol message. Generated types
// implement it with pointer receivers.
type Message interface {
	Info() *MessageInfo
	// Length is the exact encoded size, signature and id included.
	Length() int
	// Append appends the encoded frame to dst. It fails (and appends nothing)
	// when a value does not fit its wire type (a string over 255 octets).
	Append(dst []byte) ([]byte, error)
	// Decode parses a whole frame (signature and id included) into the
	// receiver. Chunk and octets fields alias frame: the message is valid
	// only while frame is unchanged.
	Decode(frame []byte, lim *Limits) error
	// Get returns a field by model name.
	Get(field string) (any, bool)
	// Set assigns a field by model name; the value must have the field's Go type
	// (integers of any Go integer type that fit are accepted for numbers).
	Set(field string, v any) error
	// Reset zeroes every field and restores constants.
	Reset()
}

// Headed is implemented by generated messages whose last field is a chunk.
// Their frame is AppendHead(dst, len(Tail())) followed by Tail(): a sender
// can write the content where it lies (a buffer the chunk was read into)
// instead of copying it into the encoded frame.
type Headed interface {
	// AppendHead appends the frame up to the content of the last field, whose
	// length prefix says n. It fails as Append does (and appends nothing).
	AppendHead(dst []byte, n int) ([]byte, error)
	// Tail is the last field's content.
	Tail() []byte
}

// Limits bounds what a decoder accepts. The zero value of a field means the default.
type Limits struct {
	MaxFrame int // whole frame, bytes (default DefaultMaxFrame)
	MaxChunk int // one chunk or longstr field, bytes (default DefaultMaxChunk)
	MaxItems int // entries of one hash or strings field (default DefaultMaxItems)
}

const (
	DefaultMaxFrame = 64 << 20
	DefaultMaxChunk = 64 << 20
	DefaultMaxItems = 1 << 20
)

// Protocol is a generated codec.
type Protocol interface {
	Name() string
	Signature() uint16
	// Messages lists every message, sorted by id.
	Messages() []*MessageInfo
	ByName(name string) (*MessageInfo, bool)
	ByID(id uint8) (*MessageInfo, bool)
	// Decode checks the signature and id and decodes a frame into a new
	// message of the right type. It never panics; errors are *Error.
	Decode(frame []byte, lim *Limits) (Message, error)
}

// GrammarOf returns a protocol's ABNF grammar of the conversation (the
// model's [protocol] grammar: "C:OHAI ( S:OHAI-OK / S:WTF )"), or "" when
// the codec carries none. Generated codecs implement Grammar() string.
func GrammarOf(p Protocol) string {
	if g, ok := p.(interface{ Grammar() string }); ok {
		return g.Grammar()
	}
	return ""
}

var (
	regMu sync.RWMutex
	reg   = map[string]Protocol{}
)

// Register makes a protocol available by name. Generated packages call it from init.
func Register(p Protocol) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := reg[p.Name()]; dup {
		panic("codec: protocol registered twice: " + p.Name())
	}
	reg[p.Name()] = p
}

// Lookup returns a registered protocol.
func Lookup(name string) (Protocol, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	p, ok := reg[name]
	return p, ok
}

// Names lists registered protocols, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(reg))
	for n := range reg {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
