package nsroot

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The plan goes from chos to the processes it starts for it (the view
// builder, the user-namespace child) in this encoding: lengths and bytes,
// field by field in a fixed order, so that argv, environment and paths
// pass as the bytes they are (not UTF-8 text), and so that no encoding
// package has to be initialised by every launch (encoding/gob's start-up
// alone cost about as much as the rest of a cached launch's own work).
// TestWireCarriesEveryField keeps the field lists below complete.

type wireWriter struct{ b []byte }

func (w *wireWriter) u64(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wireWriter) int(v int)    { w.b = binary.AppendVarint(w.b, int64(v)) }
func (w *wireWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *wireWriter) str(s string) { w.u64(uint64(len(s))); w.b = append(w.b, s...) }
func (w *wireWriter) strs(l []string) {
	w.u64(uint64(len(l)))
	for _, s := range l {
		w.str(s)
	}
}
func (w *wireWriter) ints(l []int) {
	w.u64(uint64(len(l)))
	for _, v := range l {
		w.int(v)
	}
}

// present writes whether a pointer is set, and says it.
func (w *wireWriter) present(set bool) bool { w.bool(set); return set }

var errWire = errors.New("truncated or malformed data")

type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errWire
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) int() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errWire
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *wireReader) bool() bool {
	if r.err != nil || len(r.b) == 0 || r.b[0] > 1 {
		r.err = errWire
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

func (r *wireReader) str() string {
	n := r.u64()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errWire
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a length, bounded by what is left (each item takes a byte
// at least), so that bad data never allocates much.
func (r *wireReader) count() int {
	n := r.u64()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errWire
		return 0
	}
	return int(n)
}

func (r *wireReader) strs() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = r.str()
	}
	return l
}

func (r *wireReader) ints() []int {
	n := r.count()
	if n == 0 {
		return nil
	}
	l := make([]int, n)
	for i := range l {
		l[i] = r.int()
	}
	return l
}

// done checks that everything was read, and nothing more is there.
func (r *wireReader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errWire
	}
	if r.err != nil {
		return fmt.Errorf("decoding %s: %w", what, r.err)
	}
	return nil
}

func (w *wireWriter) view(v *View) {
	w.str(v.Tree)
	w.str(v.TreePath)
	w.bool(v.Host)
	w.str(v.Root)
	w.str(v.RootSource)
	w.u64(uint64(len(v.Mounts)))
	for i := range v.Mounts {
		w.mount(&v.Mounts[i])
	}
	if w.present(v.Cache != nil) {
		w.str(v.Cache.Dir)
		w.str(v.Cache.Tree)
		w.str(v.Cache.Key)
		w.str(v.Cache.Variant)
	}
	w.strs(v.Devices)
}

func (r *wireReader) view(v *View) {
	v.Tree = r.str()
	v.TreePath = r.str()
	v.Host = r.bool()
	v.Root = r.str()
	v.RootSource = r.str()
	if n := r.count(); n > 0 {
		v.Mounts = make([]Mount, n)
		for i := range v.Mounts {
			r.mount(&v.Mounts[i])
		}
	}
	if r.bool() {
		v.Cache = &Cache{Dir: r.str(), Tree: r.str(), Key: r.str(), Variant: r.str()}
	}
	v.Devices = r.strs()
}

func (w *wireWriter) mount(m *Mount) {
	w.str(string(m.Op))
	w.str(m.Source)
	w.str(m.Target)
	for _, f := range []bool{m.File, m.Recursive, m.ReadOnly, m.NoSuid, m.NoDev, m.NoFollow, m.Optional, m.InView} {
		w.bool(f)
	}
	w.str(m.SameFileAs)
	w.str(m.Added)
	w.u64(uint64(len(m.Provide)))
	for _, p := range m.Provide {
		w.str(p.Path)
		w.str(p.Source)
		w.str(p.Link)
		w.bool(p.Soname)
	}
	w.str(m.HostRoot)
	w.str(m.Why)
}

func (r *wireReader) mount(m *Mount) {
	m.Op = Op(r.str())
	m.Source = r.str()
	m.Target = r.str()
	for _, f := range []*bool{&m.File, &m.Recursive, &m.ReadOnly, &m.NoSuid, &m.NoDev, &m.NoFollow, &m.Optional, &m.InView} {
		*f = r.bool()
	}
	m.SameFileAs = r.str()
	m.Added = r.str()
	if n := r.count(); n > 0 {
		m.Provide = make([]Provision, n)
		for i := range m.Provide {
			m.Provide[i] = Provision{Path: r.str(), Source: r.str(), Link: r.str(), Soname: r.bool()}
		}
	}
	m.HostRoot = r.str()
	m.Why = r.str()
}

func (w *wireWriter) identity(id *Identity) {
	if w.present(id != nil) {
		w.int(id.UID)
		w.str(id.Key)
		w.strs(id.Passwd)
		w.strs(id.Group)
	}
}

func (r *wireReader) identity() *Identity {
	if !r.bool() {
		return nil
	}
	return &Identity{UID: r.int(), Key: r.str(), Passwd: r.strs(), Group: r.strs()}
}

func (w *wireWriter) process(p *Process) {
	c := &p.Creds
	w.int(c.UID)
	w.int(c.GID)
	w.ints(c.Groups)
	w.bool(c.KeepCaps)
	w.bool(c.KeepBounding)
	w.bool(c.NoNewPrivs)
	w.identity(p.Identity)
	w.str(p.Dir)
	w.strs(p.DirFallback)
	if w.present(p.DirID != nil) {
		w.u64(p.DirID.Dev)
		w.u64(p.DirID.Ino)
	}
	w.str(p.Path)
	w.strs(p.Argv)
	w.strs(p.Env)
	w.bool(p.Inherit.Recorded)
	w.u64(uint64(p.Inherit.Ignored))
	w.u64(uint64(p.Inherit.Blocked))
	w.u64(p.Inherit.StackLimit)
}

func (r *wireReader) process(p *Process) {
	c := &p.Creds
	c.UID = r.int()
	c.GID = r.int()
	c.Groups = r.ints()
	c.KeepCaps = r.bool()
	c.KeepBounding = r.bool()
	c.NoNewPrivs = r.bool()
	p.Identity = r.identity()
	p.Dir = r.str()
	p.DirFallback = r.strs()
	if r.bool() {
		p.DirID = &FileID{Dev: r.u64(), Ino: r.u64()}
	}
	p.Path = r.str()
	p.Argv = r.strs()
	p.Env = r.strs()
	p.Inherit.Recorded = r.bool()
	p.Inherit.Ignored = SignalSet(r.u64())
	p.Inherit.Blocked = SignalSet(r.u64())
	p.Inherit.StackLimit = r.u64()
}

// encodePlan and decodePlan carry a whole plan (to the user-namespace child).
func encodePlan(p *Plan) []byte {
	w := &wireWriter{}
	w.view(&p.View)
	w.process(&p.Process)
	w.strs(p.Notes)
	w.bool(p.Verbose)
	return w.b
}

func decodePlan(b []byte) (*Plan, error) {
	r := &wireReader{b: b}
	p := &Plan{}
	r.view(&p.View)
	r.process(&p.Process)
	p.Notes = r.strs()
	p.Verbose = r.bool()
	return p, r.done("the plan")
}

func (q *builderRequest) encode() []byte {
	w := &wireWriter{}
	w.view(&q.View)
	w.identity(q.Identity)
	return w.b
}

func (q *builderRequest) decode(b []byte) error {
	r := &wireReader{b: b}
	r.view(&q.View)
	q.Identity = r.identity()
	return r.done("the view to build")
}

func (res *builderResult) encode() []byte {
	w := &wireWriter{}
	w.strs(res.Notes)
	w.str(res.Warning)
	w.bool(res.Private)
	w.str(res.Err)
	return w.b
}

func (res *builderResult) decode(b []byte) error {
	r := &wireReader{b: b}
	res.Notes = r.strs()
	res.Warning = r.str()
	res.Private = r.bool()
	res.Err = r.str()
	return r.done("the builder's result")
}
