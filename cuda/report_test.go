package cuda

import (
	"strings"
	"testing"
)

func TestAggregateSumsByKernelLargestFirst(t *testing.T) {
	p := aggregate(10, []span{
		{key: "unary_f16", ms: 0.5},
		{key: "cublas gemm f16 (conv2d)", ms: 2, flops: 4e9},
		{key: "unary_f16", ms: 0.25},
		{key: "cublas gemm f16 (conv2d)", ms: 3, flops: 6e9},
		{key: "im2col_f16", ms: 0.75},
		{key: "add_bias_f16", ms: 0.75},
	})
	want := []KernelTime{
		{Name: "cublas gemm f16 (conv2d)", Launches: 2, MS: 5, GFLOP: 10},
		{Name: "add_bias_f16", Launches: 1, MS: 0.75}, // ties by name
		{Name: "im2col_f16", Launches: 1, MS: 0.75},
		{Name: "unary_f16", Launches: 2, MS: 0.75},
	}
	if len(p.Kernels) != len(want) {
		t.Fatalf("kernels %v, want %v", p.Kernels, want)
	}
	for i := range want {
		if p.Kernels[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, p.Kernels[i], want[i])
		}
	}
	if p.KernelMS() != 7.25 || p.Gaps() != 2.75 || p.Launches() != 6 {
		t.Errorf("kernels %v ms, gaps %v ms, %d launches; want 7.25, 2.75, 6", p.KernelMS(), p.Gaps(), p.Launches())
	}
	// Event resolution can put the kernels' sum above the call's time: no negative gap.
	if g := aggregate(1, []span{{key: "k", ms: 1.01}}).Gaps(); g != 0 {
		t.Errorf("gaps %v, want 0", g)
	}
}

func TestProfileTableFoldsTheRest(t *testing.T) {
	p := aggregate(10, []span{
		{key: "cublas gemm f16 (matmul)", ms: 4, flops: 8e9},
		{key: "groupnorm_f16", ms: 2},
		{key: "unary_f16", ms: 1},
		{key: "im2col_f16", ms: 1},
	})
	var sb strings.Builder
	p.Write(&sb, 2)
	out := sb.String()
	for _, want := range []string{
		"cublas gemm f16 (matmul)                            1      4.000   40.0    4000.0     2.00",
		"groupnorm_f16                                       1      2.000   20.0    2000.0        -",
		"(2 other kernels)                                   2      2.000   20.0",
		"(outside kernels: gaps, copies, memsets)                   2.000   20.0",
		"(whole call)                                        4     10.000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unary_f16") {
		t.Errorf("rows past the top 2 are listed:\n%s", out)
	}
}
