package pipeline

import (
	"errors"
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

// ActivationBytes is a lower bound of the memory a generation of width×height
// needs beyond the weights: the tensors that must exist at the same moment in
// its two largest calls, whatever the backend frees in between.
//   - The UNet, as its up path starts: every skip connection of the down path
//     (conv_in's output, each down layer's output and each downsampler's), for
//     batch latents (2 with classifier-free guidance).
//   - The VAE decoder's widest convolution at the largest resolution, its input
//     and output (one image).
//
// It counts no intermediate that a backend may free early, nor the weights,
// so a size it refuses cannot run anywhere; the real use is higher (on an H100
// a 512² SD 2.1 fp16 loop peaked at 5.8 GiB with 2.6 GiB of weights).
func (v Variant) ActivationBytes(width, height, batch int, d tensor.DType) int64 {
	elem := int64(d.Size())
	h, w := int64(ceilDiv(height, 8)), int64(ceilDiv(width, 8))

	u := v.UNet
	skips := int64(u.BlockOutChannels[0]) * h * w // conv_in
	lh, lw := h, w
	for l, c := range u.BlockOutChannels {
		skips += int64(u.LayersPerBlock) * int64(c) * lh * lw
		if l < len(u.BlockOutChannels)-1 { // the downsampler rounds up (stride 2, padding 1)
			lh, lw = (lh+1)/2, (lw+1)/2
			skips += int64(c) * lh * lw
		}
	}
	unetBytes := int64(batch) * skips * elem

	// The decoder runs its blocks from the widest channels down, doubling the
	// size after every block but the last: block i works at (h, w)·2^i, and its
	// first convolution reads the previous block's channels.
	ch := v.VAE.BlockOutChannels
	var vaeElems int64
	vh, vw := h, w
	prev := int64(ch[len(ch)-1])
	for i := len(ch) - 1; i >= 0; i-- {
		c := int64(ch[i])
		vaeElems = max(vaeElems, (prev+c)*vh*vw)
		if i > 0 { // the upsampler's convolution, at the doubled size, keeps c channels
			vh, vw = 2*vh, 2*vw
			vaeElems = max(vaeElems, 2*c*vh*vw)
		}
		prev = c
	}
	return max(unetBytes, vaeElems*elem)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// ErrTooLarge is wrapped when a request needs more memory than the device has.
var ErrTooLarge = errors.New("does not fit in memory")

// checkFits refuses a size whose activations cannot fit in what the backend
// has available, before any work starts: --width 100000 --height 100000 used
// to run for 45 s and then die out of memory. Backends that cannot say how
// much memory they have are not checked.
func (m *Model) checkFits(width, height, batch int) error {
	r, ok := m.Backend.(tensor.MemoryReporter)
	if !ok {
		return nil
	}
	avail, err := r.AvailableMemory()
	if err != nil {
		return nil
	}
	need := m.Variant.ActivationBytes(width, height, batch, m.DType)
	if need <= avail {
		return nil
	}
	// The largest square of this model that the same memory could hold, as a hint.
	side := 8
	for s := 8; s <= 1<<16; s += 8 {
		if m.Variant.ActivationBytes(s, s, batch, m.DType) > avail {
			break
		}
		side = s
	}
	return fmt.Errorf("pipeline: %d×%d %w: its activations need at least %s in %s (an estimate that leaves out the weights) and %s has %s available; the largest square that could fit is about %d×%d (the model's native size is %d×%d)",
		width, height, ErrTooLarge, bytesString(need), m.DType, m.Backend.Name(), bytesString(avail), side, side, m.Variant.Width, m.Variant.Height)
}

func bytesString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 6 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i-1])
}
