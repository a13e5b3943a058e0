package nsroot

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/chos-hpc/chos/pkg/spec"
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

func (w *wireWriter) view(v *spec.View) {
	w.str(v.Tree)
	w.str(v.TreePath)
	w.bool(v.Host)
	w.str(v.Root)
	w.str(v.RootSource)
	w.str(v.OuterHost)
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
	if d := v.Devices; w.present(d != nil) {
		w.strs(d.Names)
		w.strs(d.SpecDirs)
		w.strs(d.Specs)
		w.str(d.Reader)
		w.bool(d.Trusted)
	}
}

func (r *wireReader) view(v *spec.View) {
	v.Tree = r.str()
	v.TreePath = r.str()
	v.Host = r.bool()
	v.Root = r.str()
	v.RootSource = r.str()
	v.OuterHost = r.str()
	if n := r.count(); n > 0 {
		v.Mounts = make([]spec.Mount, n)
		for i := range v.Mounts {
			r.mount(&v.Mounts[i])
		}
	}
	if r.bool() {
		v.Cache = &spec.Cache{Dir: r.str(), Tree: r.str(), Key: r.str(), Variant: r.str()}
	}
	if r.bool() {
		v.Devices = &spec.Devices{Names: r.strs(), SpecDirs: r.strs(), Specs: r.strs(), Reader: r.str(), Trusted: r.bool()}
	}
}

func (w *wireWriter) mount(m *spec.Mount) {
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
	w.strs(m.Except)
	w.str(m.HostRoot)
	w.str(string(m.Origin))
	w.str(m.Why)
}

func (r *wireReader) mount(m *spec.Mount) {
	m.Op = spec.Op(r.str())
	m.Source = r.str()
	m.Target = r.str()
	for _, f := range []*bool{&m.File, &m.Recursive, &m.ReadOnly, &m.NoSuid, &m.NoDev, &m.NoFollow, &m.Optional, &m.InView} {
		*f = r.bool()
	}
	m.SameFileAs = r.str()
	m.Added = r.str()
	if n := r.count(); n > 0 {
		m.Provide = make([]spec.Provision, n)
		for i := range m.Provide {
			m.Provide[i] = spec.Provision{Path: r.str(), Source: r.str(), Link: r.str(), Soname: r.bool()}
		}
	}
	m.Except = r.strs()
	m.HostRoot = r.str()
	m.Origin = spec.Origin(r.str())
	m.Why = r.str()
}

func (w *wireWriter) layer(id *spec.Layer) {
	if w.present(id != nil) {
		w.int(id.UID)
		w.str(id.Key)
		w.strs(id.Passwd)
		w.strs(id.Group)
	}
}

func (r *wireReader) layer() *spec.Layer {
	if !r.bool() {
		return nil
	}
	return &spec.Layer{UID: r.int(), Key: r.str(), Passwd: r.strs(), Group: r.strs()}
}

func (w *wireWriter) process(p *spec.Process) {
	c := &p.Creds
	w.int(c.UID)
	w.int(c.GID)
	w.ints(c.Groups)
	w.bool(c.KeepCaps)
	w.bool(c.KeepBounding)
	w.bool(c.NoNewPrivs)
	w.str(p.Dir)
	w.strs(p.DirFallback)
	if w.present(p.DirID != nil) {
		w.u64(p.DirID.Dev)
		w.u64(p.DirID.Ino)
	}
	w.str(p.Path)
	w.strs(p.Argv)
	w.strs(p.Env)
}

func (r *wireReader) process(p *spec.Process) {
	c := &p.Creds
	c.UID = r.int()
	c.GID = r.int()
	c.Groups = r.ints()
	c.KeepCaps = r.bool()
	c.KeepBounding = r.bool()
	c.NoNewPrivs = r.bool()
	p.Dir = r.str()
	p.DirFallback = r.strs()
	if r.bool() {
		p.DirID = &spec.FileID{Dev: r.u64(), Ino: r.u64()}
	}
	p.Path = r.str()
	p.Argv = r.strs()
	p.Env = r.strs()
}

func (w *wireWriter) inherited(in *Inherited) {
	w.bool(in.Recorded)
	w.u64(uint64(in.Ignored))
	w.u64(uint64(in.Blocked))
	w.u64(in.StackLimit)
}

func (r *wireReader) inherited(in *Inherited) {
	in.Recorded = r.bool()
	in.Ignored = SignalSet(r.u64())
	in.Blocked = SignalSet(r.u64())
	in.StackLimit = r.u64()
}

func (w *wireWriter) notes(notes []spec.Note) {
	w.u64(uint64(len(notes)))
	for _, n := range notes {
		w.bool(n.Warning)
		w.str(n.Text)
	}
}

func (r *wireReader) notes() []spec.Note {
	n := r.count()
	if n == 0 {
		return nil
	}
	notes := make([]spec.Note, n)
	for i := range notes {
		notes[i] = spec.Note{Warning: r.bool(), Text: r.str()}
	}
	return notes
}

func (q *childRequest) encode() []byte {
	w := &wireWriter{}
	w.view(&q.Plan.View)
	w.layer(q.Plan.Layer)
	w.process(&q.Plan.Process)
	w.inherited(&q.Inherit)
	w.bool(q.Verbose)
	return w.b
}

func (q *childRequest) decode(b []byte) error {
	r := &wireReader{b: b}
	r.view(&q.Plan.View)
	q.Plan.Layer = r.layer()
	r.process(&q.Plan.Process)
	r.inherited(&q.Inherit)
	q.Verbose = r.bool()
	return r.done("the plan")
}

func (q *builderRequest) encode() []byte {
	w := &wireWriter{}
	w.view(&q.View)
	w.layer(q.Layer)
	return w.b
}

func (q *builderRequest) decode(b []byte) error {
	r := &wireReader{b: b}
	r.view(&q.View)
	q.Layer = r.layer()
	return r.done("the view to build")
}

func (res *builderResult) encode() []byte {
	w := &wireWriter{}
	w.notes(res.Notes)
	w.bool(res.Private)
	w.bool(res.Built)
	w.str(res.Err)
	return w.b
}

func (res *builderResult) decode(b []byte) error {
	r := &wireReader{b: b}
	res.Notes = r.notes()
	res.Private = r.bool()
	res.Built = r.bool()
	res.Err = r.str()
	return r.done("the builder's result")
}
