//go:build cuda

package cuda_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rfnet/rfnet-native/cuda"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// TestProfileCountsLaunches profiles a call of known launches: two matrix
// products, a 3×3 convolution (im2col, its GEMM, the bias), attention and
// an activation, and checks each kernel's launches and product FLOPs.
func TestProfileCountsLaunches(t *testing.T) {
	g := device(t)
	prof := g.(interface {
		Profile(func() error) (cuda.KernelProfile, error)
	})
	d := tensor.Float16
	a := backendtest.Randn(g, d, 1, 2, 48, 40)
	w := backendtest.Randn(g, d, 2, 40, 24)
	x := backendtest.Randn(g, d, 3, 1, 4, 6, 6)
	kw := backendtest.Randn(g, d, 4, 8, 4, 3, 3)
	bias := backendtest.Randn(g, d, 5, 8)
	syncOK(t, g)
	p, err := prof.Profile(func() error {
		y := a.MatMul(w)
		y.MatMul(backendtest.Randn(g, d, 6, 24, 16)).SiLU()
		x.Conv2d(kw, bias, 1, 1)
		tensor.Attention(a, a, a, 1/math.Sqrt(40))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	p.Write(&table, 0)
	t.Logf("profile:\n%s", table.String())
	rows := map[string]cuda.KernelTime{}
	for _, k := range p.Kernels {
		rows[k.Name] = k
		if k.MS < 0 || math.IsNaN(k.MS) {
			t.Errorf("%s: %v ms", k.Name, k.MS)
		}
	}
	// GEMMs are cuBLAS's or the built-in kernel's, whichever the backend found.
	gemm := "cublas gemm f16"
	if strings.HasSuffix(g.Name(), "built-in tensor-core GEMM") {
		gemm = "gemm_wmma_f16"
	}
	for _, c := range []struct {
		name     string
		launches int
		gflop    float64
	}{
		{gemm + " (matmul)", 2, 2 * (2*48*24*40 + 2*48*16*24) / 1e9},
		{gemm + " (conv2d)", 1, 2 * 8 * 36 * 4 * 9 / 1e9},
		{"im2col_f16", 1, 0},
		{"add_bias_f16", 1, 0},
		{"unary_f16", 1, 0},
		{"attention_fa2_d40_f16", 1, 4 * 2 * 48 * 48 * 40 / 1e9},
	} {
		k := rows[c.name]
		if k.Launches != c.launches || math.Abs(k.GFLOP-c.gflop) > 1e-12 {
			t.Errorf("%s: %d launches, %g GFLOP; want %d and %g (profile %v)", c.name, k.Launches, k.GFLOP, c.launches, c.gflop, p.Kernels)
		}
	}
	if p.TotalMS <= 0 || p.Gaps() < 0 || p.KernelMS() <= 0 {
		t.Errorf("total %v ms, kernels %v ms, gaps %v ms", p.TotalMS, p.KernelMS(), p.Gaps())
	}

	// Launches outside Profile are not recorded, and the next profile starts empty.
	a.MatMul(w)
	again, err := prof.Profile(func() error { a.SiLU(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if again.Launches() != 1 {
		t.Errorf("second profile: %d launches %v, want the one activation", again.Launches(), again.Kernels)
	}
}

// TestProfileReportsTheCallsError: a failing call's error wins over the profile.
func TestProfileReportsTheCallsError(t *testing.T) {
	g := device(t)
	prof := g.(interface {
		Profile(func() error) (cuda.KernelProfile, error)
	})
	errCall := errors.New("the call failed")
	if _, err := prof.Profile(func() error { return errCall }); !errors.Is(err, errCall) {
		t.Fatalf("Profile returned %v, want the call's error", err)
	}
	if _, err := prof.Profile(func() error { return nil }); err != nil {
		t.Fatalf("a profile after a failed one: %v", err)
	}
}

// TestProfileLaunchesInOrder: the timeline of a call lists its launches in
// stream order, each starting after the one before ended, within the call.
func TestProfileLaunchesInOrder(t *testing.T) {
	g := device(t)
	prof := g.(interface {
		ProfileLaunches(func() error) ([]cuda.Launch, error)
	})
	a := backendtest.Randn(g, tensor.Float32, 1, 64, 64)
	syncOK(t, g)
	start := time.Now()
	launches, err := prof.ProfileLaunches(func() error {
		a.SiLU().MatMul(a).SiLU()
		return nil
	})
	wall := float64(time.Since(start).Microseconds()) / 1e3
	if err != nil {
		t.Fatal(err)
	}
	if len(launches) < 3 || launches[0].Name != "unary_f32" || launches[len(launches)-1].Name != "unary_f32" {
		t.Fatalf("launches %+v, want the activation first and last", launches)
	}
	const eventResolution = 0.002 // ms
	for i, l := range launches {
		if l.StartMS < 0 || l.MS < 0 || l.StartMS+l.MS > wall+eventResolution {
			t.Errorf("launch %d %s: starts at %v ms for %v ms, outside the call's %v ms", i, l.Name, l.StartMS, l.MS, wall)
		}
		if i > 0 && l.StartMS+eventResolution < launches[i-1].StartMS+launches[i-1].MS {
			t.Errorf("launch %d %s starts at %v ms, before %s ended at %v ms", i, l.Name, l.StartMS, launches[i-1].Name, launches[i-1].StartMS+launches[i-1].MS)
		}
	}
}
