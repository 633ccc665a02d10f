package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, dir string, o Options) *Spool {
	t.Helper()
	o.Dir = dir
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// appendSync appends and waits until the record is durable.
func appendSync(t *testing.T, s *Spool, payload string, count int) {
	t.Helper()
	done := make(chan error, 1)
	if err := s.Append([]byte(payload), count, nil, func(err error) { done <- err }); err != nil {
		t.Fatalf("append %q: %v", payload, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("durable %q: %v", payload, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never durable")
	}
}

// next reads one record or fails after a bounded wait.
func next(t *testing.T, s *Spool) Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return r
}

// drain reads every record available now.
func drain(t *testing.T, s *Spool, done bool) []string {
	t.Helper()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		r, err := s.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		out = append(out, string(r.Payload))
		if done {
			s.Done(r)
		}
	}
}

// crash drops the spool as kill -9 would: nothing is closed in order, the
// lock is released by the descriptor going away.
func (s *Spool) crash() {
	s.mu.Lock()
	s.closed = true
	s.signalLocked()
	s.mu.Unlock()
	close(s.syncWake)
	<-s.syncDone
	for _, seg := range s.segs {
		seg.close()
	}
	s.lock.Close()
}

func TestAppendNextDoneAndCleanup(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "spool")
	s := open(t, parent, Options{})
	for i := range 5 {
		appendSync(t, s, fmt.Sprintf("r%d", i), i+1)
	}
	for i := range 5 {
		r := next(t, s)
		if string(r.Payload) != fmt.Sprintf("r%d", i) || r.Count != i+1 || r.Replayed {
			t.Fatalf("record %d: %q count %d replayed %v", i, r.Payload, r.Count, r.Replayed)
		}
		s.Done(r)
	}
	if !s.Empty() || s.Stats().Bytes == 0 {
		t.Fatalf("empty %v, stats %+v (the active segment stays until Close)", s.Empty(), s.Stats())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(parent); !os.IsNotExist(err) {
		t.Fatalf("spool folder (created by Open) left behind after everything was done: %v", err)
	}
	if err := s.Append([]byte("late"), 1, nil, func(error) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

// What was not Done survives Close and a crash, in order, once; what was
// Done is not read again.
func TestReplayAfterCloseAndCrash(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 100})
	for i := range 10 {
		appendSync(t, s, fmt.Sprintf("record-%02d", i), 1)
	}
	for i := range 4 {
		r := next(t, s)
		if i%2 == 0 {
			s.Done(r) // 0 and 2 done; 1 and 3 handed out, never done
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{SegmentBytes: 100})
	got := drain(t, s, false)
	want := []string{"record-01", "record-03", "record-04", "record-05", "record-06", "record-07", "record-08", "record-09"}
	if !slices.Equal(got, want) {
		t.Fatalf("after close: %q, want %q", got, want)
	}
	s.crash() // none of them done
	s = open(t, dir, Options{SegmentBytes: 100})
	r := next(t, s)
	if !r.Replayed || string(r.Payload) != "record-01" {
		t.Fatalf("after crash: %q replayed %v", r.Payload, r.Replayed)
	}
	s.Done(r)
	got = append([]string{string(r.Payload)}, drain(t, s, true)...)
	if !slices.Equal(got, want) {
		t.Fatalf("after crash: %q, want %q", got, want)
	}
	if !s.Empty() {
		t.Fatal("not empty after everything was done")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// leftSegment writes records and leaves them in dir, returning the path of
// the one segment holding them.
func leftSegment(t *testing.T, dir string, payloads ...string) string {
	t.Helper()
	s := open(t, dir, Options{})
	for i, p := range payloads {
		appendSync(t, s, p, 10*(i+1))
	}
	segPath := s.segs[0].path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return segPath
}

func TestCorruptionLosesOnlyTheDamagedRecord(t *testing.T) {
	payloads := []string{"first record", "second record", "third record"}
	frame2 := int64(len(fileMagic) + headerSize + len(payloads[0]))
	for _, c := range []struct {
		name        string
		damage      func(t *testing.T, path string)
		want        []string
		lostRecords uint64
		lostCount   uint64
	}{
		{"torn tail", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()-5); err != nil {
				t.Fatal(err)
			}
		}, payloads[:2], 1, 30},
		{"torn header at the tail", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()-int64(len(payloads[2]))-headerSize+7); err != nil {
				t.Fatal(err)
			}
		}, payloads[:2], 1, 0},
		{"bit flip in a payload", func(t *testing.T, p string) { flip(t, p, frame2+headerSize+3) }, []string{payloads[0], payloads[2]}, 1, 20},
		{"bit flip in a header", func(t *testing.T, p string) { flip(t, p, frame2+5) }, []string{payloads[0], payloads[2]}, 1, 0},
		{"bad file header", func(t *testing.T, p string) { flip(t, p, 2) }, nil, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := leftSegment(t, dir, payloads...)
			c.damage(t, path)
			s := open(t, dir, Options{})
			defer s.Close()
			if got := drain(t, s, true); !slices.Equal(got, c.want) {
				t.Fatalf("read %q, want %q", got, c.want)
			}
			if st := s.Stats(); st.CorruptRecords != c.lostRecords || st.CorruptCount != c.lostCount {
				t.Fatalf("stats %+v, want %d records (count %d) lost", st, c.lostRecords, c.lostCount)
			}
			if !s.Empty() {
				t.Fatal("not empty")
			}
		})
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A full spool refuses new records (the caller drops and counts them);
// space comes back as sealed segments are done.
func TestFullRefusesUntilSpaceIsFreed(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1000, SegmentBytes: 200})
	defer s.Close()
	payload := string(make([]byte, 100))
	n := 0
	for ; n < 100; n++ {
		err := s.Append([]byte(payload), 1, nil, func(error) {})
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 || n == 100 || s.Stats().Bytes > 1000 {
		t.Fatalf("%d appended before full, stats %+v", n, s.Stats())
	}
	for range 4 {
		s.Done(next(t, s))
	}
	appendSync(t, s, payload, 1)
}

// Processes sharing a folder get one instance each; a new process adopts
// the records of every dead instance, not those of live ones.
func TestInstancesAndAdoption(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, Options{})
	b := open(t, dir, Options{})
	c := open(t, dir, Options{})
	if a.Dir() == b.Dir() || b.Dir() == c.Dir() {
		t.Fatalf("shared instance: %s %s %s", a.Dir(), b.Dir(), c.Dir())
	}
	appendSync(t, a, "a1", 1)
	appendSync(t, b, "b1", 1)
	appendSync(t, b, "b2", 1)
	appendSync(t, c, "c1", 1)
	b.crash()
	c.crash()
	// a is alive: d takes b's instance (the first free one) and adopts c's.
	d := open(t, dir, Options{})
	if d.Dir() != b.Dir() {
		t.Fatalf("new instance %s, want the first free one %s", d.Dir(), b.Dir())
	}
	if got := drain(t, d, true); !slices.Equal(got, []string{"b1", "b2", "c1"}) {
		t.Fatalf("adopted %q", got)
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Fatalf("adopted instance folder still there: %v", err)
	}
	if got := drain(t, a, false); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("live instance's records: %q", got)
	}
	d.Close()
	a.Close()
}

// valueOf: every third record is handed over in memory too.
func valueOf(i int) any {
	if i%3 == 0 {
		return i
	}
	return nil
}

// Append's value reaches the reader instead of the payload, up to
// MemRecords records; the rest, and everything after a restart, come from
// the disk.
func TestValuesInMemory(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MemRecords: 2})
	for i := range 4 {
		done := make(chan error, 1)
		if err := s.Append(fmt.Appendf(nil, "p%d", i), 1, i, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		r := next(t, s)
		if i < 2 && (r.Value != i || r.Payload != nil) || i >= 2 && (r.Value != nil || string(r.Payload) != fmt.Sprintf("p%d", i)) {
			t.Fatalf("record %d: value %v payload %q", i, r.Value, r.Payload)
		}
		if i != 1 {
			s.Done(r)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{})
	defer s.Close()
	if r := next(t, s); r.Value != nil || string(r.Payload) != "p1" || !r.Replayed {
		t.Fatalf("after restart: %+v", r)
	}
}

// Many records through several segments and concurrent readers: each is
// handed out exactly once, segments are deleted as they are done.
func TestConcurrentReadersEachRecordOnce(t *testing.T) {
	s := open(t, t.TempDir(), Options{SegmentBytes: 4096})
	const n = 2000
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := s.Next(ctx)
				if err != nil {
					return
				}
				p := string(r.Payload)
				if r.Value != nil {
					p = fmt.Sprintf("payload-%05d", r.Value.(int))
				}
				mu.Lock()
				seen[p]++
				mu.Unlock()
				s.Done(r)
			}
		}()
	}
	durable := make(chan error, n)
	for i := range n {
		if err := s.Append(fmt.Appendf(nil, "payload-%05d", i), 1, valueOf(i), func(err error) { durable <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if err := <-durable; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !s.Empty() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct records read, want %d", len(seen), n)
	}
	for k, v := range seen {
		if v != 1 {
			t.Fatalf("%s read %d times", k, v)
		}
	}
	if st := s.Stats(); st.Segments > 1 {
		t.Fatalf("done segments not deleted: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
