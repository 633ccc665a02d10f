package clickhousetraces

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestInnerLoggerDemotesOnlyTheHelpersFailureLine(t *testing.T) {
	for _, level := range []zapcore.Level{zapcore.InfoLevel, zapcore.DebugLevel} {
		core, logs := observer.New(level)
		l := innerLogger(zap.New(core)).With(zap.String("exporter", "clickhouse"))
		l.Error(innerFailure+" Try enabling sending_queue to survive temporary failures.", zap.Int("rejected_items", 3))
		l.Error("some other failure")
		l.Warn(innerFailure) // not an error: left alone

		got := map[string]zapcore.Level{}
		for _, e := range logs.All() {
			got[e.Message] = e.Level
		}
		if lv, ok := got["some other failure"]; !ok || lv != zapcore.ErrorLevel {
			t.Errorf("at %v: other errors keep their level, got %v (logged %v)", level, lv, ok)
		}
		if lv, ok := got[innerFailure]; !ok || lv != zapcore.WarnLevel {
			t.Errorf("at %v: a warning with the same text keeps its level, got %v (logged %v)", level, lv, ok)
		}
		lv, ok := got[innerFailure+" Try enabling sending_queue to survive temporary failures."]
		switch {
		case level == zapcore.InfoLevel && ok:
			t.Errorf("at info: the helper's failure line is logged at %v, want dropped (debug)", lv)
		case level == zapcore.DebugLevel && (!ok || lv != zapcore.DebugLevel):
			t.Errorf("at debug: the helper's failure line logged %v at %v, want at debug", ok, lv)
		}
		if n := logs.FilterField(zap.String("exporter", "clickhouse")).Len(); n != logs.Len() {
			t.Errorf("at %v: fields added with With are lost (%d of %d entries have them)", level, n, logs.Len())
		}
	}
}
