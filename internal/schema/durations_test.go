package schema

import (
	"math"
	"strings"
	"testing"
)

// The SQL and Go forms of the digest agree with the constant, and every
// duration is within DigestRelError of its bin's value.
func TestDigest(t *testing.T) {
	if !strings.Contains(DigestBinExpr("d"), "log(1.02)") || !strings.Contains(DigestValueExpr("b"), "pow(1.02,") ||
		!strings.Contains(DigestValueExpr("b"), "/ 2.02") || DigestGamma != 1.02 {
		t.Fatal("DigestBinExpr / DigestValueExpr do not use DigestGamma")
	}
	worst := 0.0
	for d := 1.0; d < 3e14; d *= 1.0007 {
		b := uint16(math.Min(math.Floor(math.Log(d)/math.Log(1.02)), 65535))
		rel := math.Abs(DigestValue(b)-d) / d
		worst = math.Max(worst, rel)
		if rel > DigestRelError+1e-12 {
			t.Fatalf("d=%g: bin %d value %g, relative error %g > %g", d, b, DigestValue(b), rel, DigestRelError)
		}
	}
	t.Logf("worst relative error %.6f, bound %.6f", worst, DigestRelError)
}

// Every bin a UInt64 of nanoseconds can reach fits a duration key's 12 bits,
// so the key's cap never merges two bins.
func TestDurationBinsFitTheKey(t *testing.T) {
	top := math.Floor(math.Log(math.MaxUint64) / math.Log(DigestGamma))
	if top > durationBinMax {
		t.Fatalf("the longest duration is bin %g, the key holds bins up to %d", top, durationBinMax)
	}
	if durationKindShift < durationEndBit+1 || durationEndBit < 2*durationStepShift || durationKindShift+2 > 32 {
		t.Fatal("duration key fields overlap or overflow a UInt32")
	}
	for _, k := range DurationKinds {
		if c, ok := DurationCode(k); ok && c >= 1<<(32-durationKindShift) {
			t.Fatalf("%s: code %d does not fit the key", k, c)
		}
	}
}
