package pipeline

import (
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// An overflow says which compute dtype to use instead, in the library's
// terms: the dtype, never a command-line flag.
func TestOverflowAdviceNamesTheDType(t *testing.T) {
	for _, c := range []struct {
		dtype tensor.DType
		want  string
	}{
		{tensor.Float16, "overflowed in fp16: compute in bf16 (same speed, fp32's range) or fp32"},
		{tensor.BFloat16, "overflowed in bf16: compute in fp32"},
		{tensor.Float32, "overflowed in f32 (a very large guidance scale?)"},
	} {
		got := (&OverflowError{c.dtype}).Error()
		if !strings.Contains(got, c.want) || strings.Contains(got, "--") {
			t.Errorf("%s: %q, want %q and no flag", c.dtype, got, c.want)
		}
	}
}
