package clickhousetraces

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// innerFailure starts the line the contrib exporter's own (bare) helper logs
// at error level whenever a push fails. Around it, this exporter retries the
// batch, or bisects it and reports what it dropped, and says so itself; the
// inner line told operators that data was rejected when it was not.
const innerFailure = "Exporting failed. Rejecting data."

// innerLogger is the contrib exporter's logger: the same sink, with the
// inner helper's failure line moved down to debug level. Everything else the
// contrib exporter logs keeps its level.
func innerLogger(l *zap.Logger) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return demoteCore{c} }))
}

type demoteCore struct{ zapcore.Core }

func (c demoteCore) With(fields []zapcore.Field) zapcore.Core { return demoteCore{c.Core.With(fields)} }

func (c demoteCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level >= zapcore.ErrorLevel && strings.HasPrefix(e.Message, innerFailure) {
		e.Level = zapcore.DebugLevel
	}
	return c.Core.Check(e, ce)
}
