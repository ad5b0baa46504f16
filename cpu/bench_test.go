package cpu_test

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// go test -run '^$' -bench . ./cpu
func BenchmarkMatMul(b *testing.B) { backendtest.BenchmarkMatMul(b, cpu.New(), tensor.Float32) }
func BenchmarkConv2d(b *testing.B) { backendtest.BenchmarkConv2d(b, cpu.New(), tensor.Float32) }
