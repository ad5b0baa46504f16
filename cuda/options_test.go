package cuda

import (
	"strings"
	"testing"
)

// A later New may only ask for the device and TF32 setting the first one did;
// the error names both settings.
func TestReopenError(t *testing.T) {
	first := Options{Ordinal: 0, TF32: false, Poison: true}
	if err := reopenError(first, Options{}); err != nil {
		t.Fatalf("same device and TF32, Poison off: %v (Poison follows the first call)", err)
	}
	for _, c := range []struct {
		asked Options
		want  string
	}{
		{Options{Ordinal: 1}, "New(ordinal 1, TF32 false)"},
		{Options{TF32: true, Poison: true}, "New(ordinal 0, TF32 true)"},
	} {
		err := reopenError(first, c.asked)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "first New of this process asked for ordinal 0, TF32 false") {
			t.Errorf("reopenError(%+v, %+v) = %v", first, c.asked, err)
		}
	}
}

// RFNET_CONV picks the input gradient's path; anything else is an error
// naming the variable and the values it takes.
func TestConvPathFromEnv(t *testing.T) {
	for _, c := range []struct {
		value string
		want  Conv2dPath
	}{{"", ConvImplicit}, {"implicit", ConvImplicit}, {"im2col", ConvIm2col}} {
		t.Setenv("RFNET_CONV", c.value)
		if got, err := convPathFromEnv(); err != nil || got != c.want {
			t.Errorf("RFNET_CONV=%q: %v, %v; want %v", c.value, got, err, c.want)
		}
	}
	t.Setenv("RFNET_CONV", "cudnn")
	if _, err := convPathFromEnv(); err == nil || !strings.Contains(err.Error(), `RFNET_CONV="cudnn"`) || !strings.Contains(err.Error(), "im2col") {
		t.Errorf("RFNET_CONV=cudnn: %v", err)
	}
}
