package pipeline

import (
	"errors"
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// unetSteps makes the denoising loop's UNet calls. On a backend that
// captures (tensor.Capturer: CUDA graphs) the first step runs the call
// eagerly and captures it, and every later step replays it, its inputs (the scaled latents, the timesteps'
// projection, the text context) copied into the graph's fixed buffers; the
// loop's shapes are the same at every step, which a replay needs. Elsewhere,
// or when the backend cannot capture (it says why), the calls run eagerly.
type unetSteps struct {
	m     *Model
	call  *tensor.Call
	eager bool
}

func (m *Model) unetSteps() *unetSteps {
	// text_time conditioning takes host values (time ids) the graph cannot hold.
	return &unetSteps{m: m, eager: m.UNet.Config.AdditionEmbedType == unet.TextTime}
}

// predict is the UNet's prediction for x at times under context.
func (u *unetSteps) predict(x *tensor.Tensor, times []float64, context *tensor.Tensor) (*tensor.Tensor, error) {
	if u.eager {
		return u.m.UNet.Forward(x, times, context, nil)
	}
	proj := u.m.UNet.TimeProjection(x.Backend(), x.DType(), times)
	if u.call == nil {
		call, first, err := tensor.CaptureCall(x.Backend(), func(in []*tensor.Tensor) *tensor.Tensor {
			out, err := u.m.UNet.ForwardProjected(in[0], in[1], in[2])
			if err != nil { // the shapes come from Forward's own, and text_time went eager
				panic(fmt.Sprintf("pipeline: unet call to capture: %v", err))
			}
			return out
		}, x, proj, context)
		if errors.Is(err, tensor.ErrUnsupported) {
			u.eager = true
			return u.m.UNet.Forward(x, times, context, nil)
		}
		if err != nil {
			return nil, err
		}
		u.call = call
		return first, nil
	}
	return u.call.Run(x, proj, context)
}

func (u *unetSteps) close() { u.call.Close() }
