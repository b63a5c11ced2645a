package interp

import "github.com/fmq/fmq/internal/diag"

// Pos is a position in a machine file: 1-based line and byte column.
type Pos = diag.Pos

// posIndex tells where the keys and values of a machine file start (see
// diag.TOMLIndex).
type posIndex struct{ ix *diag.TOMLIndex }

func indexTOML(src string) *posIndex { return &posIndex{diag.IndexTOML(src)} }

// key returns the position of the key at path, or of its nearest ancestor.
func (p *posIndex) key(parts ...string) Pos { return p.ix.Key(parts...) }

// val returns the position of the value at path (falling back to its key).
func (p *posIndex) val(parts ...string) Pos { return p.ix.Val(parts...) }

// plain reports whether offsets inside the string value at path are
// offsets in the file (so that guard errors can point inside it).
func (p *posIndex) plain(parts ...string) bool { return p.ix.Plain(parts...) }
