package pipeline

import (
	"errors"
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// unetSteps makes the denoising loop's UNet calls. On a backend that
// captures (tensor.Capturer: CUDA graphs) the first step runs the call
// eagerly and captures it, and every later step replays it, its inputs (the
// scaled latents, the timesteps' projection) copied into the graph's fixed
// buffers; the text's prepared keys and values stay where they are for the
// whole generation, and the graph reads them there. The loop's shapes are the
// same at every step, which a replay needs. Elsewhere, or when the backend
// cannot capture (it says why), the calls run eagerly.
type unetSteps struct {
	m       *Model
	context *unet.Context
	call    *tensor.Call
	eager   bool
}

// unetSteps makes the calls under a prepared context, which must outlive them
// (close the steps before freeing it).
func (m *Model) unetSteps(context *unet.Context) *unetSteps {
	// text_time conditioning takes host values (time ids) the graph cannot hold.
	return &unetSteps{m: m, context: context, eager: m.UNet.Config.AdditionEmbedType == unet.TextTime}
}

// predict is the UNet's prediction for x at times.
func (u *unetSteps) predict(x *tensor.Tensor, times []float64) (*tensor.Tensor, error) {
	if u.eager {
		return u.m.UNet.ForwardContext(x, times, u.context, nil, nil)
	}
	proj := u.m.UNet.TimeProjection(x.Backend(), x.DType(), times)
	if u.call == nil {
		call, first, err := tensor.CaptureCall(x.Backend(), func(in []*tensor.Tensor) *tensor.Tensor {
			out, err := u.m.UNet.ForwardProjected(in[0], in[1], u.context)
			if err != nil { // the shapes come from Forward's own, and text_time went eager
				panic(fmt.Sprintf("pipeline: unet call to capture: %v", err))
			}
			return out
		}, x, proj)
		if errors.Is(err, tensor.ErrUnsupported) {
			u.eager = true
			return u.m.UNet.ForwardContext(x, times, u.context, nil, nil)
		}
		if err != nil {
			return nil, err
		}
		u.call = call
		return first, nil
	}
	return u.call.Run(x, proj)
}

func (u *unetSteps) close() { u.call.Close() }
