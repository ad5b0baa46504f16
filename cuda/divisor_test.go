package cuda

import (
	"math/rand/v2"
	"testing"
)

// The kernels' multiply-shift division equals plain division for every
// dividend and divisor below 2^31, and falls back to it beyond.
func TestDivisor(t *testing.T) {
	const top = 1<<31 - 1
	check := func(n int64, d int) {
		t.Helper()
		if got, want := newDivisor(d).quot(n), n/int64(d); got != want {
			t.Fatalf("%d / %d: got %d, want %d", n, d, got, want)
		}
	}
	edges := []int64{0, 1, 2, 3, 63, 64, 65, 4095, 4096, 4097, 1<<30 - 1, 1 << 30, 1<<30 + 1, top - 1, top}
	for _, d := range edges {
		if d == 0 {
			continue
		}
		for _, n := range edges {
			check(n, int(d))
		}
		for k := int64(0); k < 4; k++ { // around multiples of d
			for _, n := range []int64{k*d - 1, k * d, k*d + 1} {
				if n >= 0 && n <= top {
					check(n, int(d))
				}
			}
		}
	}
	// Every dividend up to 2^16 for the divisors SD's shapes use and their neighbours.
	for _, d := range []int{1, 2, 3, 5, 7, 9, 40, 77, 80, 160, 320, 640, 1280, 4096, 2880, 11520} {
		for n := int64(0); n < 1<<16; n++ {
			check(n, d)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		d := 1 + r.IntN(top)
		if r.IntN(2) == 0 {
			d = 1 + r.IntN(1<<(1+r.IntN(30)))
		}
		check(r.Int64N(top+1), d)
		// A wide dividend or divisor takes the plain division.
		check(top+1+r.Int64N(1<<40), d)
	}
	check(1<<40, 1<<33)
	check(5, 1<<31)
}

// The record is laid out as C lays out struct Divisor.
func TestDivisorBytes(t *testing.T) {
	v := newDivisor(320)
	b := v.bytes()
	if len(b) != 16 || b[0] != 0x40 || b[1] != 0x01 || int(b[12]) != int(v.s) || v.s != 9 {
		t.Fatalf("bytes %x for %+v", b, v)
	}
}
