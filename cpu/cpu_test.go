package cpu_test

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

func TestConformance(t *testing.T) { backendtest.RunAll(t, cpu.New()) }
