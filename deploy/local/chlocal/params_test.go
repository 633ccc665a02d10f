package chlocal

import (
	"net/url"
	"testing"
)

func TestCheckParamsIgnoresLiterals(t *testing.T) {
	none := paramSet{Values: url.Values{}}
	for _, sql := range []string{
		`SELECT 'req'' OR {tenant:String}'`,
		`SELECT 'a\' {tenant:String}'`,
		"SELECT `{x:String}` FROM t",
		`SELECT "{x:String}" FROM t`,
		"SELECT 1 -- {x:String}\n",
		"SELECT 1 /* {x:String} */",
		"SELECT 1 # {x:String}",
	} {
		if err := checkParams(sql, none); err != nil {
			t.Errorf("%q: %v", sql, err.msg)
		}
	}
	for _, sql := range []string{
		"SELECT {x:String}",
		`SELECT 'a\\', {x:String}`,
		`SELECT 'it''s', {x:String}`,
		"SELECT /* c */ {x:String}",
		"SELECT 1 -- c\n, {x:String}",
	} {
		if err := checkParams(sql, none); err == nil {
			t.Errorf("%q: a missing parameter is not reported", sql)
		}
	}
	set := paramSet{Values: url.Values{"param_x": {"1"}}}
	if err := checkParams("SELECT {x:String}", set); err != nil {
		t.Errorf("a set parameter is reported: %v", err.msg)
	}
}
