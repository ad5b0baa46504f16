package rfnet

import (
	"errors"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/sam"
	"github.com/rfnet/rfnet-native/tensor"
)

// objectMask is extract_mask of §8 for one object: §8.1 on its decoded image
// when the run has a SAM, else §8.2 from its attention alone. A box-mode
// prompt that cannot be made (ErrNoSAMBox, where the reference raises) falls
// back to §8.2 for that object, as its method says; any other failure of SAM
// fails the run rather than quietly changing its masks.
func (r *runner) objectMask(sal grid, img *tensor.Tensor, soBox Box, h, w int) (grid, string, *SAMChoice, error) {
	c := r.cfg
	if r.sam != nil {
		choice, err := SAMMask(r.sam, SAMInput{Image: sam.FromImage(pipeline.ToRGBA(img)), Attention: sal.v,
			AttH: sal.h, AttW: sal.w, Box: c.SAMBox, MaskH: h, MaskW: w})
		switch {
		case err == nil:
			choice.Segmentation = nil // the run keeps the choice, not SAM's tensors
			return grid{h, w, choice.Mask()}, choice.Method, choice, nil
		case !errors.Is(err, ErrNoSAMBox):
			return grid{}, "", nil, err
		}
	}
	return extractMask(sal, soBox, h, w, c.MaskSigma, c.MaskTau), MaskAttention, nil, nil
}
