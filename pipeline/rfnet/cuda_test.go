//go:build cuda

package rfnet

import (
	"math"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// The guidance passes on the GPU (UNet forward with the probability maps,
// box and overall losses, gradient back to the latent) agree with the CPU's
// float64 run of the same fixture, within fixtures.GPUModelTol.
func TestGuidanceGradientOnGPU(t *testing.T) {
	g := fixtures.GPU(t)
	ref := newLossFixture(t)
	for _, d := range []tensor.DType{tensor.Float32, tensor.Float16, tensor.BFloat16} {
		t.Run(d.String(), func(t *testing.T) {
			tol := fixtures.GPUModelTol(d)
			f := newLossFixtureOn(t, g, d)
			ts := f.soLoop.sched.Timesteps()
			for _, c := range []struct {
				name     string
				ref, got loop
			}{{"box loss", ref.soLoop, f.soLoop}, {"overall loss", ref.allLoop, f.allLoop}} {
				wantLoss, wantGrad, err := ref.m.guidancePass(c.ref, ref.z, 0, ts[0])
				if err != nil {
					t.Fatal(err)
				}
				loss, grad, err := f.m.guidancePass(c.got, f.z, 0, ts[0])
				if err != nil {
					t.Fatal(err)
				}
				if err := g.Sync(); err != nil {
					t.Fatal(err)
				}
				le := math.Abs(loss-wantLoss) / math.Max(math.Abs(wantLoss), 1e-12)
				ge := fixtures.RelL2(grad, wantGrad)
				t.Logf("%s: loss %.6g vs %.6g (rel. %.2e), gradient rel. L2 %.2e", c.name, loss, wantLoss, le, ge)
				if !(le < tol) || !(ge < tol) {
					t.Errorf("%s: loss rel. error %.3g, gradient rel. L2 %.3g (tolerance %.g)", c.name, le, ge, tol)
				}
			}
		})
	}
}
