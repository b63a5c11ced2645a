package codec

import "fmt"

// ErrorKind classifies a decoding or encoding failure.
type ErrorKind uint8

const (
	BadSignature ErrorKind = iota + 1 // frame does not start with the protocol signature
	UnknownID                         // no message has this id
	Truncated                         // frame ends inside a field
	OverLimit                         // a size exceeds Limits or a wire maximum
	BadConstant                       // a constant field holds another value
	Trailing                          // bytes left after the last field
	BadValue                          // a value cannot be encoded (encode side) or Set has the wrong type
)

var kindNames = [...]string{"", "bad signature", "unknown message id", "truncated frame", "over limit", "bad constant", "trailing bytes", "bad value"}

func (k ErrorKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("ErrorKind(%d)", uint8(k))
}

// Error is the typed error of every codec operation.
type Error struct {
	Kind     ErrorKind
	Protocol string // "filemq"
	Message  string // message name, when known
	Field    string // field name, when known
	Offset   int    // byte offset in the frame where the problem was found
	Detail   string
}

func (e *Error) Error() string {
	s := e.Protocol + ": " + e.Kind.String()
	if e.Message != "" {
		s += " in " + e.Message
		if e.Field != "" {
			s += "." + e.Field
		}
	}
	if e.Kind != BadValue {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is makes errors.Is(err, codec.ErrTruncated) and friends match by kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Protocol == "" && t.Message == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrBadSignature = &Error{Kind: BadSignature}
	ErrUnknownID    = &Error{Kind: UnknownID}
	ErrTruncated    = &Error{Kind: Truncated}
	ErrOverLimit    = &Error{Kind: OverLimit}
	ErrBadConstant  = &Error{Kind: BadConstant}
	ErrTrailing     = &Error{Kind: Trailing}
	ErrBadValue     = &Error{Kind: BadValue}
)
