package rfnet

import (
	"fmt"

	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
)

// CheckPrediction refuses a v-prediction model (SD 2.x 768): the reference
// supports epsilon models only, and the algorithm notes (§14.12) list what
// would have to change for v. Run checks it unless Options.AllowV is set.
func CheckPrediction(m *pipeline.Model) error {
	if m.Variant.Sched.PredictionType != sched.VPrediction {
		return nil
	}
	return fmt.Errorf("rfnet: the model predicts v (%s): RFNet's reference supports epsilon models only, as its 512×512 canvas, box rasterization and DDIM epsilon math assume (algorithm notes §14.12); use an epsilon model such as sd21-base: %w",
		m.Variant.Sched.PredictionType, tensor.ErrUnsupported)
}
