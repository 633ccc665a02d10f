package statustraceexporter

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/statustrace/statustrace/exporter/internal/rows"
	"github.com/statustrace/statustrace/internal/timewindow"
)

// insertColumns makes empty driver columns of the insert's types, as a
// batch's header gives them.
func insertColumns(t *testing.T) []column.Interface {
	t.Helper()
	out := make([]column.Interface, len(rows.InsertColumns))
	for i, c := range rows.InsertColumns {
		col, err := column.Type(c.Type).Column(c.Name, &column.ServerContext{Timezone: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = col
	}
	return out
}

// encoded is the columns as the driver sends them.
func encoded(t *testing.T, cols []column.Interface) []byte {
	t.Helper()
	var buf proto.Buffer
	for _, c := range cols {
		if s, ok := c.(column.CustomSerialization); ok {
			if err := s.WriteStatePrefix(&buf); err != nil {
				t.Fatal(err)
			}
		}
		c.Encode(&buf)
	}
	return buf.Buf
}

// TestAppendColumnsMatchesDriver: columns handed over side by side encode
// to the same bytes as the driver's own one-by-one append of Slices, for a
// batch large enough to take the parallel path and for a small one.
func TestAppendColumnsMatchesDriver(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one processor: appendColumns never goes parallel")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{parallelAppendMin * 3, 100} {
		var c rows.Columns
		st := rows.Map(statusSpansOnly(genTransitions(rng, n, "a-", time.Now().Add(-time.Hour))), &c, testWindow())
		if st.Rows != n {
			t.Fatalf("mapped %d rows of %d: %+v", st.Rows, n, st)
		}
		want := insertColumns(t)
		for i, s := range c.Slices() {
			if _, err := want[i].Append(s); err != nil {
				t.Fatal(err)
			}
		}
		got := insertColumns(t)
		if err := appendColumns(got, &c); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i].Rows() != n {
				t.Fatalf("%d rows: column %s has %d", n, rows.InsertColumns[i].Name, got[i].Rows())
			}
		}
		if !bytes.Equal(encoded(t, got), encoded(t, want)) {
			t.Fatalf("%d rows: the columns appended side by side encode differently from the driver's", n)
		}
	}
}

// TestAppendColumnsNamesTheFailingColumn: a column the driver refuses is
// an error that names it, on either path, and a header of another width
// is refused before anything is appended.
func TestAppendColumnsNamesTheFailingColumn(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{parallelAppendMin, 10} {
		var c rows.Columns
		rows.Map(statusSpansOnly(genTransitions(rng, n, "b-", time.Now().Add(-time.Hour))), &c, testWindow())
		cols := insertColumns(t)
		// request_id (a String) offered to a UInt8 column.
		bad, err := column.Type("UInt8").Column("request_id", &column.ServerContext{Timezone: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		i := columnIndex(t, "request_id")
		cols[i] = bad
		err = appendColumns(cols, &c)
		if err == nil || !strings.Contains(err.Error(), "append column request_id") {
			t.Fatalf("%d rows: err = %v, want one naming request_id", n, err)
		}
		if err := appendColumns(cols[:len(cols)-1], &c); err == nil || !strings.Contains(err.Error(), "columns") {
			t.Fatalf("%d rows: a narrower header: err = %v", n, err)
		}
	}
}

func columnIndex(t *testing.T, name string) int {
	t.Helper()
	for i, c := range rows.InsertColumns {
		if c.Name == name {
			return i
		}
	}
	t.Fatalf("no insert column %s", name)
	return -1
}

// testWindow is the default configuration's window, fixed now.
func testWindow() timewindow.Bounds {
	return NewFactory().CreateDefaultConfig().(*Config).window().At(time.Now())
}
