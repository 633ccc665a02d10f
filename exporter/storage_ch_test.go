package statustraceexporter

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/plugin/spans"
)

// The SQL derivation behind span_id's DEFAULT is the plugin's, byte for byte:
// were they to differ, a derivable span_id would come back wrong after the
// merge that stops storing it.
func TestDerivedSpanIDExprMatchesPlugin(t *testing.T) {
	db := newDB(t)
	ids := []string{"r", "req-00001-8c6b8a66", "6f1c0e1e-3b7a-4a53-9d51-4f9f0c1d2e3f", "ünïcødé/请求", strings.Repeat("x", 256), "with\x00nul"}
	seqs := []uint64{0, 1, 2, 255, 256, 1 << 32, 1<<63 + 5, math.MaxUint64}
	for _, id := range ids {
		for _, seq := range seqs {
			var got string
			err := db.Conn.QueryRow(context.Background(),
				"SELECT hex("+schema.DerivedSpanIDExpr+") FROM (SELECT ? AS "+schema.ColRequestID+", toUInt64(?) AS "+schema.ColSeq+")", id, seq).Scan(&got)
			if err != nil {
				t.Fatal(err)
			}
			want := spans.TransitionSpanID(id, seq)
			if got != strings.ToUpper(hex.EncodeToString(want[:])) {
				t.Errorf("request_id %q seq %d: SQL %s, plugin %x", id, seq, got, want)
			}
		}
	}
}

// span_id reads back exactly as written, whether or not the plugin's
// derivation gives it; after merges a part whose span IDs are all derivable
// holds no span_id data at all, while one with a foreign ID keeps the column
// (for all its rows: still exact).
func TestSpanIDStoredOnlyWhenNotDerivable(t *testing.T) {
	db := newDB(t)
	exp := startExporter(t, testConfig(db))
	// Only wide parts (by default those over 10 MiB: the bulk of the data)
	// drop an expired column; compact ones keep it, reset to the DEFAULT.
	if err := db.Conn.Exec(context.Background(), "ALTER TABLE "+q(db, "transitions")+" MODIFY SETTING min_bytes_for_wide_part = 0"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	// Two days, so two partitions (parts) after OPTIMIZE FINAL.
	derived := genEvents(rng, 20, time.Now().Add(-30*time.Hour), time.Hour)
	mixed := genEvents(rng, 20, time.Now().Add(-2*time.Hour), time.Hour)
	for i := range derived {
		derived[i].RequestID = "d-" + derived[i].RequestID
		derived[i].SpanID = spans.TransitionSpanID(derived[i].RequestID, derived[i].Seq)
	}
	for i := range mixed {
		mixed[i].RequestID = "m-" + mixed[i].RequestID
		mixed[i].SpanID = spans.TransitionSpanID(mixed[i].RequestID, mixed[i].Seq)
	}
	mixed[3].SpanID = [8]byte{1, 2, 3, 4, 5, 6, 7, 8} // e.g. a span from another producer
	all := append(append([]transition{}, derived...), mixed...)
	deliver(t, exp, all)

	check := func(phase string) {
		var got []struct {
			RequestID string `ch:"request_id"`
			Seq       uint64 `ch:"seq"`
			SpanID    string `ch:"span_id"`
		}
		if err := db.Conn.Select(context.Background(), &got,
			"SELECT request_id, seq, hex(span_id) AS span_id FROM "+q(db, "transitions")+" FINAL"); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, tr := range all {
			want[fmt.Sprintf("%s/%d", tr.RequestID, tr.Seq)] = strings.ToUpper(hex.EncodeToString(tr.SpanID[:]))
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", phase, len(got), len(want))
		}
		for _, r := range got {
			if k := fmt.Sprintf("%s/%d", r.RequestID, r.Seq); r.SpanID != want[k] {
				t.Errorf("%s: %s span_id %s, want %s", phase, k, r.SpanID, want[k])
			}
		}
	}
	check("as inserted")
	optimizeAll(t, db)
	check("after OPTIMIZE FINAL")

	var parts []struct {
		Partition string `ch:"partition"`
		SpanIDs   uint64 `ch:"span_ids"`
	}
	err := db.Conn.Select(context.Background(), &parts, `SELECT partition, countIf(column = ?) AS span_ids
FROM system.parts_columns WHERE database = ? AND table = ? AND active GROUP BY partition ORDER BY partition`,
		schema.ColSpanID, db.Name, schema.Transitions)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].SpanIDs != 0 || parts[1].SpanIDs != 1 {
		t.Errorf("span_id stored in parts %+v, want only in the later partition's (it has a foreign ID)", parts)
	}
}
