package transport

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// PlainCredentials are what a Dealer presents with ZMTP PLAIN. They are kept
// by the Options value, so every re-dial authenticates again.
type PlainCredentials struct {
	Username string
	Password string
}

// PasswordFile is a set of PLAIN logins a Router accepts. Passwords are
// stored as given: clear text, or a bcrypt hash when the field starts with
// "$2" (generate one with htpasswd -nbB user pass, or bcrypt.GenerateFromPassword).
type PasswordFile struct {
	entries map[string]string
	// dummy is compared against when the user is unknown, so that the time
	// taken does not reveal which logins exist.
	dummy string
}

// PasswordFileError is a syntax error in a password file.
type PasswordFileError struct {
	Path string
	Line int
	Msg  string
}

func (e *PasswordFileError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// LoadPasswordFile reads a password file: one "login:password" per line;
// blank lines and lines starting with '#' (after spaces) are ignored. The
// password is everything after the first ':' (it may contain ':').
func LoadPasswordFile(path string) (*PasswordFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParsePasswords(f, path)
}

// ParsePasswords parses password-file text; name is used in error messages.
// All syntax errors are reported at once, joined, in line order.
func ParsePasswords(r io.Reader, name string) (*PasswordFile, error) {
	pf := &PasswordFile{entries: map[string]string{}, dummy: "\x00not-a-password\x00"}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	var errs []error
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		user, pass, ok := strings.Cut(text, ":")
		switch {
		case !ok:
			errs = append(errs, &PasswordFileError{name, line, "missing ':' between login and password"})
			continue
		case user == "":
			errs = append(errs, &PasswordFileError{name, line, "empty login"})
			continue
		case len(user) > 255 || len(pass) > 255:
			errs = append(errs, &PasswordFileError{name, line, "login or password longer than 255 bytes (PLAIN limit)"})
			continue
		}
		if strings.HasPrefix(pass, "$2") {
			if _, err := bcrypt.Cost([]byte(pass)); err != nil {
				errs = append(errs, &PasswordFileError{name, line, "bad bcrypt hash: " + err.Error()})
				continue
			}
		}
		if _, dup := pf.entries[user]; dup {
			errs = append(errs, &PasswordFileError{name, line, fmt.Sprintf("duplicate login %q", user)})
			continue
		}
		pf.entries[user] = pass
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &PasswordFileError{name, line + 1, err.Error()})
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return pf, nil
}

// NewPasswords builds a PasswordFile from a map login -> password (clear or bcrypt).
func NewPasswords(m map[string]string) *PasswordFile {
	pf := &PasswordFile{entries: map[string]string{}, dummy: "\x00not-a-password\x00"}
	for k, v := range m {
		pf.entries[k] = v
	}
	return pf
}

// Len returns the number of logins.
func (pf *PasswordFile) Len() int { return len(pf.entries) }

// Check reports whether user/pass is a valid login. Clear-text passwords are
// compared in constant time; unknown users cost the same as a wrong password.
func (pf *PasswordFile) Check(user, pass string) bool {
	want, known := pf.entries[user]
	if !known {
		want = pf.dummy
	}
	var ok bool
	if strings.HasPrefix(want, "$2") {
		ok = bcrypt.CompareHashAndPassword([]byte(want), []byte(pass)) == nil
	} else {
		ok = subtle.ConstantTimeCompare([]byte(want), []byte(pass)) == 1
	}
	return ok && known
}

// joinErrors joins errors one per line (like go/scanner.ErrorList).
type errorList []error

func (l errorList) Error() string {
	var b bytes.Buffer
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l errorList) Unwrap() []error { return l }

func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errorList(errs)
}
