package backendtest

import (
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

func testUpsample2xForward(t *testing.T, f forward) {
	xv, x := f.host(19, 1, 2, 2, 3)
	want := make([]float64, 48)
	for c := 0; c < 2; c++ {
		for y := 0; y < 4; y++ {
			for xx := 0; xx < 6; xx++ {
				want[(c*4+y)*6+xx] = xv[(c*2+y/2)*3+xx/2]
			}
		}
	}
	f.check(t, x.Upsample2x(), tensor.Shape{1, 2, 4, 6}, want)
}
