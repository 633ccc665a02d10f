// Package spool is the plugin's durable queue, modelled on the collector's
// file_storage-backed persistent queue: records are appended to segment
// files and fsynced (group commit) before the caller is told they are
// durable; readers take them in order, and a record is forgotten only when
// its reader says Done. What is not Done when the process stops or dies is
// read again by the next process that opens the same folder.
//
// Layout: the folder holds one sub-folder per live process ("instance-N",
// locked with flock so that schedulers sharing a folder never share a
// queue). A process takes the first free instance and adopts the segments
// of every other unlocked instance (one that died), so nothing waits for
// its own process to come back. Segments are "<id>.seg" (a file header,
// then frames) with a "<id>.done" log of the indexes of its records already
// Done, so a restart re-reads only what was not finished.
//
// A frame is a 24-byte header (magic, payload length, count, index, CRC-32C
// of the header, CRC-32C of the payload) and the payload. A torn or
// corrupt frame loses only itself: a bad payload is skipped by its length,
// a bad header by scanning for the next valid one. Lost records are counted
// (Stats.CorruptRecords, and Stats.CorruptCount with the counts their
// headers carried).
package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	hclog "github.com/hashicorp/go-hclog"
)

// Defaults of Options.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultSegmentBytes = 8 << 20
	DefaultMemRecords   = 64
)

// ErrFull: appending the record would take the spool over MaxBytes.
var ErrFull = errors.New("spool full")

// ErrClosed: the spool was closed.
var ErrClosed = errors.New("spool closed")

// Options configure Open.
type Options struct {
	Dir          string // the shared folder; created if missing
	MaxBytes     int64  // bound of all segment files together; default DefaultMaxBytes
	SegmentBytes int64  // a segment is sealed once it is this large; default DefaultSegmentBytes
	// MemRecords bounds the records whose Append value is kept in memory
	// for the reader (so that it need not read and decode them back);
	// default DefaultMemRecords. Beyond it readers get the payload only.
	MemRecords int
	Logger     hclog.Logger
}

// Record is one appended payload as a reader gets it.
type Record struct {
	Payload  []byte // nil when Value is set
	Value    any    // what Append was given, when still in memory
	Count    int    // what the writer said the payload holds (e.g. transitions)
	Replayed bool   // written by an earlier process
	seg      *segment
	index    uint32
}

// Stats describe the spool now.
type Stats struct {
	Bytes          int64  // size of all segment files
	Segments       int    // segment files
	CorruptRecords uint64 // frames lost to corruption or a torn write
	CorruptCount   uint64 // sum of the counts those frames carried (when their header was intact)
}

type pendingSync struct {
	seg  *segment
	end  int64
	done func(error)
}

// Spool is safe for concurrent use: one writer (Append), many readers
// (Next, Done).
type Spool struct {
	opts Options
	log  hclog.Logger
	dir  string   // this process's instance folder
	lock *os.File // flock'ed lock file of dir
	// createdParent: Open created the shared folder, so Close may remove it
	// when it is empty again (a folder someone else made is left alone).
	createdParent bool

	mu      sync.Mutex
	segs    []*segment // by id; the last may be active
	active  *segment   // being appended to; nil until the first Append
	nextID  uint64
	bytes   int64
	pending []pendingSync
	changed chan struct{} // closed and replaced when readers may make progress
	closed  bool
	corrupt Stats
	inMem   int // records whose value is kept for the reader

	rmu      sync.Mutex // serializes readers: the cursor and read I/O
	syncWake chan struct{}
	syncDone chan struct{}
}

// Open claims an instance folder under opts.Dir, adopts the segments of
// dead instances, and starts the background fsync loop.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no folder")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MemRecords <= 0 {
		opts.MemRecords = DefaultMemRecords
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool folder %s: %w", opts.Dir, err)
	}
	s := &Spool{opts: opts, log: opts.Logger, changed: make(chan struct{}), syncWake: make(chan struct{}, 1), syncDone: make(chan struct{})}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		s.createdParent = true
	}
	if s.dir, s.lock, err = claimInstance(dir); err != nil {
		return nil, err
	}
	if err := s.load(dir); err != nil {
		s.lock.Close()
		return nil, err
	}
	go s.syncLoop()
	return s, nil
}

// Dir is the instance folder this spool writes to.
func (s *Spool) Dir() string { return s.dir }

// load finds this instance's leftover segments and adopts those of dead
// instances.
func (s *Spool) load(parent string) error {
	own, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	for _, id := range own {
		s.nextID = max(s.nextID, id+1)
	}
	s.nextID = max(s.nextID, 1)
	for _, id := range own {
		seg, err := s.openOld(id)
		if err != nil {
			return err
		}
		s.addOld(seg)
	}
	others, err := filepath.Glob(filepath.Join(parent, instancePrefix+"*"))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, o := range others {
		if o == s.dir {
			continue
		}
		if err := s.adopt(o); err != nil {
			s.log.Warn("spool: cannot adopt the segments of another instance", "folder", o, "error", err)
		}
	}
	if len(s.segs) > 0 {
		s.log.Info("spool: records from an earlier run will be sent", "segments", len(s.segs), "bytes", s.bytes)
	}
	return nil
}

func (s *Spool) addOld(seg *segment) {
	s.segs = append(s.segs, seg)
	s.bytes += seg.size
}

// adopt moves the segments of a dead instance into this one, as the next
// ids, and removes its folder.
func (s *Spool) adopt(other string) error {
	lock, ok, err := tryLock(other)
	if err != nil || !ok {
		return err // alive, or not an instance
	}
	defer lock.Close()
	ids, err := listSegments(other)
	if err != nil {
		return err
	}
	for _, id := range ids {
		nid := s.nextID
		s.nextID++
		from, to := segPath(other, id), segPath(s.dir, nid)
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("adopt %s: %w", from, err)
		}
		if err := os.Rename(donePath(other, id), donePath(s.dir, nid)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("spool: done log of an adopted segment lost (its finished records will be sent again)", "error", err)
		}
		seg, err := s.openOld(nid)
		if err != nil {
			return err
		}
		s.addOld(seg)
		s.log.Info("spool: adopted a segment of a stopped instance", "from", from)
	}
	syncDir(s.dir)
	removeInstance(other, lock)
	syncDir(filepath.Dir(other))
	return nil
}

// Append writes one record and returns at once; durable is called (from
// another goroutine) once it is on disk, or with the error that kept it
// from getting there. ErrFull and I/O errors are returned directly and
// durable is not called. value (may be nil) is handed to the reader in
// place of the payload while few enough records wait (Options.MemRecords):
// the decoded form of payload, so that this process need not decode it.
func (s *Spool) Append(payload []byte, count int, value any, durable func(error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	frameLen := int64(headerSize + len(payload))
	extra := int64(0)
	if s.active == nil || s.active.size >= s.opts.SegmentBytes {
		extra = int64(len(fileMagic))
	}
	if s.bytes+frameLen+extra > s.opts.MaxBytes {
		return ErrFull
	}
	if extra > 0 {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	seg := s.active
	frame := appendFrame(make([]byte, 0, frameLen), payload, uint32(count), seg.nextIndex)
	if _, err := seg.f.Write(frame); err != nil {
		// A torn frame at the end: cut it off and start a new segment, so
		// the next record is not written after garbage.
		_ = seg.f.Truncate(seg.size)
		s.sealActive()
		return fmt.Errorf("spool: write: %w", err)
	}
	if value != nil && s.inMem < s.opts.MemRecords {
		if seg.mem == nil {
			seg.mem = map[uint32]memRecord{}
		}
		seg.mem[seg.nextIndex] = memRecord{value: value, frameLen: frameLen, count: count}
		s.inMem++
	}
	seg.nextIndex++
	seg.size += frameLen
	s.bytes += frameLen
	s.pending = append(s.pending, pendingSync{seg: seg, end: seg.size, done: durable})
	select {
	case s.syncWake <- struct{}{}:
	default:
	}
	return nil
}

// rotate seals the active segment and creates the next one.
func (s *Spool) rotate() error {
	s.sealActive()
	id := s.nextID
	f, err := os.OpenFile(segPath(s.dir, id), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if _, err := f.Write([]byte(fileMagic)); err != nil {
		f.Close()
		_ = os.Remove(segPath(s.dir, id))
		return fmt.Errorf("spool: new segment: %w", err)
	}
	syncDir(s.dir) // the file's name must survive a crash too
	s.nextID++
	seg := &segment{id: id, path: segPath(s.dir, id), f: f, size: int64(len(fileMagic))}
	s.segs = append(s.segs, seg)
	s.bytes += seg.size
	s.active = seg
	return nil
}

// sealActive ends appends to the active segment; the sync loop closes its
// write handle once everything in it is durable.
func (s *Spool) sealActive() {
	if s.active == nil {
		return
	}
	s.active.sealed = true
	s.active = nil
	s.closeSyncedLocked()
	s.signalLocked()
}

func (s *Spool) closeSyncedLocked() {
	for _, seg := range s.segs {
		if seg.sealed && seg.f != nil && seg.synced >= seg.size && !s.hasPending(seg) {
			seg.f.Close()
			seg.f = nil
		}
	}
}

func (s *Spool) hasPending(seg *segment) bool {
	for _, p := range s.pending {
		if p.seg == seg {
			return true
		}
	}
	return false
}

// syncLoop is the group commit: every Append since the last fsync is made
// durable by one fsync per segment, then its callback runs.
func (s *Spool) syncLoop() {
	defer close(s.syncDone)
	for {
		_, ok := <-s.syncWake
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		closed := s.closed
		s.mu.Unlock()
		s.syncBatch(batch)
		if !ok || (closed && len(batch) == 0) {
			return
		}
	}
}

func (s *Spool) syncBatch(batch []pendingSync) {
	if len(batch) == 0 {
		return
	}
	ends := map[*segment]int64{}
	var order []*segment
	for _, p := range batch {
		if _, ok := ends[p.seg]; !ok {
			order = append(order, p.seg)
		}
		ends[p.seg] = max(ends[p.seg], p.end)
	}
	errs := map[*segment]error{}
	for _, seg := range order {
		if err := seg.f.Sync(); err != nil {
			errs[seg] = fmt.Errorf("spool: fsync %s: %w", seg.path, err)
		}
	}
	s.mu.Lock()
	for _, seg := range order {
		// After a failed fsync the records may still be read (and sent) from
		// the page cache; their writer re-sends them as well. Readers must
		// not stall on them either way.
		seg.synced = max(seg.synced, ends[seg])
		if errs[seg] != nil && !seg.sealed && s.active == seg {
			s.sealActive()
		}
	}
	s.closeSyncedLocked()
	s.signalLocked()
	s.mu.Unlock()
	for _, p := range batch {
		p.done(errs[p.seg])
	}
}

// signalLocked wakes the readers waiting in Next.
func (s *Spool) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Next returns the oldest record not yet handed out, waiting for one until
// ctx ends or the spool is closed. Records come out in append order.
func (s *Spool) Next(ctx context.Context) (Record, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Record{}, ErrClosed
		}
		seg, limit, sealed := s.readable()
		changed := s.changed
		s.mu.Unlock()
		if seg != nil {
			rec, ok, err := s.readFrom(seg, limit, sealed)
			if err != nil {
				return Record{}, err
			}
			if ok {
				return rec, nil
			}
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// readable is the first segment the cursor has not finished, how far it
// may read in it (only durable bytes) and whether it may finish it there;
// nil when the cursor is at the durable end.
func (s *Spool) readable() (*segment, int64, bool) {
	for _, seg := range s.segs {
		if seg.fullyRead {
			continue
		}
		last := seg.sealed && seg.synced >= seg.size
		if seg.readOff < seg.synced || last {
			return seg, seg.synced, last
		}
		return nil, 0, false
	}
	return nil, 0, false
}

// readFrom reads the frame at seg's cursor (with s.rmu held). ok=false
// means the cursor moved without a record to hand out (a corrupt frame, a
// record already Done, the end of a sealed segment).
func (s *Spool) readFrom(seg *segment, limit int64, sealed bool) (Record, bool, error) {
	if seg.r == nil {
		r, err := os.Open(seg.path)
		if err != nil {
			s.mu.Lock()
			s.loseSegmentLocked(seg, fmt.Errorf("open: %w", err))
			s.mu.Unlock()
			return Record{}, false, nil
		}
		seg.r = r
	}
	if seg.readOff == 0 && sealed && limit < int64(len(fileMagic)) {
		// Created, and the process died before its header was written: no record.
		s.finishRead(seg)
		return Record{}, false, nil
	}
	if seg.readOff == 0 {
		if err := seg.checkMagic(); err != nil {
			s.mu.Lock()
			s.loseSegmentLocked(seg, err)
			s.mu.Unlock()
			return Record{}, false, nil
		}
		s.advance(seg, int64(len(fileMagic)))
	}
	if seg.readOff >= limit {
		if sealed {
			s.finishRead(seg)
		}
		return Record{}, false, nil
	}
	if rec, ok := s.fromMemory(seg); ok {
		return rec, true, nil
	}
	fr, next, err := readFrame(seg.r, seg.readOff, limit)
	switch {
	case err == nil:
	case errors.Is(err, errTorn) && !sealed:
		return Record{}, false, nil // cannot happen: synced ends at a frame boundary
	default:
		// Corrupt: lose this frame only, carry on at the next valid one.
		s.mu.Lock()
		s.corrupt.CorruptRecords++
		s.corrupt.CorruptCount += uint64(fr.count)
		s.mu.Unlock()
		s.log.Error("spool: corrupt record skipped", "segment", seg.path, "offset", seg.readOff, "count", fr.count, "error", err)
		if next <= seg.readOff {
			next = limit
		}
		s.advance(seg, next)
		return Record{}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seg.readOff = next
	seg.readIndex = fr.index + 1
	s.forgetMemLocked(seg, fr.index)
	if seg.doneSet[fr.index] {
		return Record{}, false, nil
	}
	seg.outstanding++
	return Record{Payload: fr.payload, Count: int(fr.count), Replayed: seg.replayed, seg: seg, index: fr.index}, true, nil
}

// fromMemory hands out the frame at the cursor from memory when Append
// kept its value: frames of this process's segments follow each other by
// index, so the cursor's frame is readIndex.
func (s *Spool) fromMemory(seg *segment) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := seg.mem[seg.readIndex]
	if !ok || seg.replayed {
		return Record{}, false
	}
	s.forgetMemLocked(seg, seg.readIndex)
	seg.readOff += m.frameLen
	rec := Record{Value: m.value, Count: m.count, seg: seg, index: seg.readIndex}
	seg.readIndex++
	seg.outstanding++
	return rec, true
}

func (s *Spool) forgetMemLocked(seg *segment, index uint32) {
	if _, ok := seg.mem[index]; ok {
		delete(seg.mem, index)
		s.inMem--
	}
}

// advance moves the cursor (read under s.mu by Empty and Close).
func (s *Spool) advance(seg *segment, off int64) {
	s.mu.Lock()
	seg.readOff = off
	s.mu.Unlock()
}

func (s *Spool) finishRead(seg *segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg.fullyRead = true
	s.maybeDeleteLocked(seg)
}

// loseSegmentLocked gives up on a segment that cannot be read at all.
func (s *Spool) loseSegmentLocked(seg *segment, err error) {
	s.log.Error("spool: unreadable segment dropped", "segment", seg.path, "error", err)
	s.corrupt.CorruptRecords++
	seg.fullyRead = true
	seg.sealed = true
	if s.active == seg {
		s.active = nil
	}
	s.maybeDeleteLocked(seg)
}

// Done forgets a record handed out by Next: it was delivered (or dropped
// for good). It is never read again, by this process or the next.
func (s *Spool) Done(rec Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := rec.seg
	if seg == nil || seg.deleted {
		return
	}
	seg.outstanding--
	// The done log is not fsynced: losing its tail in a machine crash only
	// sends those records again (same span IDs, deduplicated downstream).
	if seg.done == nil && !s.closed {
		if f, err := os.OpenFile(donePath(s.dir, seg.id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			seg.done = f
		}
	}
	if seg.done != nil {
		var b [4]byte
		putUint32(b[:], rec.index)
		_, _ = seg.done.Write(b[:])
	}
	s.maybeDeleteLocked(seg)
}

// maybeDeleteLocked removes a segment whose every record was read and Done.
func (s *Spool) maybeDeleteLocked(seg *segment) {
	if !seg.sealed || !seg.fullyRead || seg.outstanding > 0 || seg.f != nil && s.hasPending(seg) {
		return
	}
	seg.close()
	seg.deleted = true
	_ = os.Remove(seg.path)
	_ = os.Remove(donePath(s.dir, seg.id))
	s.bytes -= seg.size
	for i, x := range s.segs {
		if x == seg {
			s.segs = append(s.segs[:i], s.segs[i+1:]...)
			break
		}
	}
	s.signalLocked()
}

// Stats returns the spool's size and its corruption counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.corrupt
	st.Bytes = s.bytes
	st.Segments = len(s.segs)
	return st
}

// Empty reports whether every record appended (or found at Open) was
// handed out and Done.
func (s *Spool) Empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		if seg.outstanding > 0 || seg.unread() {
			return false
		}
	}
	return true
}

// Close makes every appended record durable, closes the files and releases
// the instance. When nothing is left to send, the instance folder is
// removed (and the shared folder too, if Open created it and it is empty). Readers blocked
// in Next get ErrClosed; records handed out but not Done are read again by
// the next process.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.signalLocked()
	s.mu.Unlock()
	close(s.syncWake)
	<-s.syncDone

	s.rmu.Lock() // no reader is in the middle of a frame
	defer s.rmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil {
		s.active.sealed = true
		s.active = nil
	}
	for _, seg := range append([]*segment(nil), s.segs...) {
		if !seg.unread() {
			seg.fullyRead = true
		}
		s.maybeDeleteLocked(seg)
	}
	for _, seg := range s.segs {
		seg.close()
	}
	if len(s.segs) == 0 {
		removeInstance(s.dir, s.lock)
		if s.createdParent {
			_ = os.Remove(filepath.Dir(s.dir)) // fails unless empty: other instances may live there
		}
		return nil
	}
	s.log.Info("spool: records left for the next start", "segments", len(s.segs), "bytes", s.bytes, "folder", s.dir)
	return s.lock.Close()
}

// segment is one segment file and the cursor state of its readers.
type segment struct {
	id       uint64
	path     string
	replayed bool
	f        *os.File // append handle; nil when sealed and synced
	r        *os.File // read handle
	done     *os.File // done log
	doneSet  map[uint32]bool

	size, synced int64
	sealed       bool
	nextIndex    uint32
	mem          map[uint32]memRecord // values of appended records not yet read
	readIndex    uint32               // index of the frame at readOff (this process's segments)

	readOff     int64
	fullyRead   bool
	outstanding int // handed out, not Done
	deleted     bool
}

// unread: the segment has bytes past the readers' cursor.
func (seg *segment) unread() bool {
	return !seg.fullyRead && max(seg.readOff, int64(len(fileMagic))) < seg.size
}

type memRecord struct {
	value    any
	frameLen int64
	count    int
}

func (seg *segment) close() {
	for _, f := range []**os.File{&seg.f, &seg.r, &seg.done} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

func (seg *segment) checkMagic() error {
	var b [len(fileMagic)]byte
	if _, err := seg.r.ReadAt(b[:], 0); err != nil {
		return fmt.Errorf("read file header: %w", err)
	}
	if string(b[:]) != fileMagic {
		return fmt.Errorf("not a spool segment (header %q)", b[:])
	}
	return nil
}

// openOld describes a segment left by an earlier process: sealed, durable,
// with the indexes of its records already Done.
func (s *Spool) openOld(id uint64) (*segment, error) {
	p := segPath(s.dir, id)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	seg := &segment{id: id, path: p, replayed: true, sealed: true, size: fi.Size(), synced: fi.Size(), doneSet: map[uint32]bool{}}
	if b, err := os.ReadFile(donePath(s.dir, id)); err == nil {
		for i := 0; i+4 <= len(b); i += 4 {
			seg.doneSet[getUint32(b[i:])] = true
		}
	}
	return seg, nil
}

const instancePrefix = "instance-"

func segPath(dir string, id uint64) string  { return filepath.Join(dir, fmt.Sprintf("%016x.seg", id)) }
func donePath(dir string, id uint64) string { return filepath.Join(dir, fmt.Sprintf("%016x.done", id)) }

// listSegments returns the segment ids in dir, oldest first, and removes
// done logs whose segment is gone.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	segs := map[string]bool{}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".seg"); ok {
			if id, err := strconv.ParseUint(name, 16, 64); err == nil {
				ids = append(ids, id)
				segs[name] = true
			}
		}
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".done"); ok && !segs[name] {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// claimInstance locks the first free instance folder under parent.
func claimInstance(parent string) (string, *os.File, error) {
	retries := 0
	for n := 0; n < 4096; n++ {
		dir := filepath.Join(parent, instancePrefix+strconv.Itoa(n))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, fmt.Errorf("spool folder: %w", err)
		}
		lock, ok, err := tryLock(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && retries < 16 {
				retries++
				n-- // removed under us by a process that just emptied it: again
				continue
			}
			return "", nil, err
		}
		if ok {
			syncDir(parent)
			return dir, lock, nil
		}
	}
	return "", nil, fmt.Errorf("spool folder %s: no free instance", parent)
}

// tryLock takes dir's lock without waiting. ok=false: another process
// holds it.
func tryLock(dir string) (*os.File, bool, error) {
	p := filepath.Join(dir, "lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("spool lock %s: %w", p, err)
	}
	// The holder may have removed the folder between our open and flock:
	// then we locked a file that no longer has this name.
	held, err1 := f.Stat()
	named, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(held, named) {
		f.Close()
		return nil, false, fmt.Errorf("spool lock %s: %w", p, os.ErrNotExist)
	}
	return f, true, nil
}

// removeInstance deletes an instance folder whose lock is held, then
// releases the lock (in that order, see tryLock).
func removeInstance(dir string, lock *os.File) {
	_ = os.Remove(filepath.Join(dir, "lock"))
	_ = os.Remove(dir)
	lock.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
