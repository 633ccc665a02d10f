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
