// The convolution record the conv kernels take (cuda/conv.go's convRecord
// writes it): kernels/conv.cu and kernels/conv_implicit.cu.
#pragma once

struct Conv {
    int C, H, W, KH, KW, stride, pad, OH, OW;
};
