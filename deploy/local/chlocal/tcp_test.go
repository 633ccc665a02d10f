package chlocal

import "testing"

func TestIsSelect(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT 1":                              true,
		"  (( select 1))":                       true,
		"-- list\n-- more\nSELECT x FROM t":     true,
		"/* c */ WITH 1 AS a SELECT a":          true,
		"# hash comment\nSELECT 1":              true,
		"CREATE TABLE t (x UInt8) ENGINE = Log": false,
		"INSERT INTO t SELECT 1":                false,
		"-- SELECT in a comment\nDROP TABLE t":  false,
		"SHOW TABLES":                           false,
		"/* SELECT */ OPTIMIZE TABLE t FINAL":   false,
	} {
		if got := isSelect(sql); got != want {
			t.Errorf("isSelect(%q) = %v, want %v", sql, got, want)
		}
	}
}

func TestUnquoteField(t *testing.T) {
	for in, want := range map[string]string{
		`'plain'`:       "plain",
		`'it\'s'`:       "it's",
		`'back\\slash'`: `back\slash`,
		`'a\nb\tc\rd'`:  "a\nb\tc\rd",
		`'nul\0x'`:      "nul\x00x",
		`'hex\x41\x7a'`: "hexAz",
		`''`:            "",
		`unquoted`:      "unquoted",
		`'\\N'`:         `\N`,
	} {
		got, err := unquoteField(in)
		if err != nil || got != want {
			t.Errorf("unquoteField(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'dangling\'`, `'short\x4'`, `'bad\xZZ'`} {
		if _, err := unquoteField(bad); err == nil {
			t.Errorf("unquoteField(%q): want an error", bad)
		}
	}
}
