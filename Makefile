# rfnet-native: `make build` for the binary, `make test` for the tests (what CI runs).
GO       ?= go
BIN      ?= bin/rfnet-native
NVCC     ?= nvcc
# SASS for Ampere, Ada and Hopper plus PTX for newer cards (Debian's nvcc 11.8 stops at sm_90).
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
             -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
CU_SRC   := $(wildcard kernels/*.cu)
# One fatbin per kernels/*.cu, embedded by the cuda package (go:embed cannot reach ../kernels).
FATBINS  := $(patsubst kernels/%.cu,cuda/fatbin/%.fatbin,$(CU_SRC))

.PHONY: build test test-short vet bench fuzz kernels sass-check cuda emu emu-selftest test-emu test-emu-cublas test-emu-gemm test-emu-tf32 clean

build:
	$(GO) build -o $(BIN) ./cmd/rfnet-native

vet:
	$(GO) vet ./...

# RFNET_CLIP_VOCAB points the real-vocabulary tokenizer test at the CLIP BPE
# files (../shared/data/clip in the team's checkout; the test skips without it).
test: vet
	$(GO) test -timeout 30m ./...

# The same without the full-size checkpoint test (a few seconds instead of minutes).
test-short: vet
	$(GO) test -short ./...

# Benchmarks of the CPU backend (GFLOP/s of matmul and conv2d) and of model calls
# (tiny models, and full-size SD 1.5 from a random checkpoint: several minutes);
# figures go in docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./cpu ./pipeline

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./weights
	$(GO) test -run '^$$' -fuzz FuzzParseReply -fuzztime 60s ./llm
	$(GO) test -run '^$$' -fuzz FuzzDecodePlan -fuzztime 60s ./llm
	$(GO) test -run '^$$' -fuzz FuzzGenerateFlags -fuzztime 60s ./cmd/rfnet-native

# The CUDA build: each kernels/*.cu compiled by nvcc into a fatbin (SASS for
# sm_80..sm_90, PTX for newer cards) that the cuda package embeds, then the
# binary and the test binaries with the cuda tag. Install nvcc with
# ../shared/tools/install-cuda-toolkit.sh (Debian's CUDA 11.8).
cuda/fatbin/%.fatbin: kernels/%.cu kernels/common.cuh
	@mkdir -p cuda/fatbin
	$(NVCC) --fatbin $(CUDA_ARCH) -O3 -o $@ $<

# The kernel files on mma.sync also include kernels/mma.cuh; the convolution
# kernels share kernels/conv.cuh.
cuda/fatbin/attention_fa2.fatbin cuda/fatbin/attention_fa2_bwd.fatbin cuda/fatbin/conv_implicit.fatbin: kernels/mma.cuh
cuda/fatbin/conv.fatbin cuda/fatbin/conv_implicit.fatbin: kernels/conv.cuh

# A fatbin whose kernels/*.cu is gone (renamed or removed) would still be
# embedded and could serve a stale copy of a kernel: it goes.
kernels: $(FATBINS)
	@for f in cuda/fatbin/*.fatbin; do [ -e "$$f" ] || continue; \
		src=kernels/$$(basename "$$f" .fatbin).cu; [ -e "$$src" ] || { echo "rm $$f (no $$src)"; rm -f "$$f"; }; done

# The compiled kernels' SASS: no local memory, no generic loads and stores
# where shared memory was meant (scripts/sass-check.sh says why).
sass-check: kernels
	scripts/sass-check.sh

cuda: kernels sass-check
	$(GO) vet -tags cuda ./...
	$(GO) build -tags cuda -o $(BIN) ./cmd/rfnet-native
	$(GO) test -tags cuda -run '^$$' ./...

# The CUDA emulator (cuda/emu): a fake libcuda + libcublas in one library that
# runs kernels/*.cu on the CPU, so the cuda-tagged tests run without a GPU.
# test-emu runs them through the emulated cuBLAS, with no cuBLAS (the
# built-in GEMM kernels of matmul.cu) in reversed order, and on TF32.
EMU_DIR  := build/emu
EMU_LIB  := $(EMU_DIR)/libcudaemu.so
EMU_CXX  ?= g++
EMU_FLAGS := -std=c++17 -O2 -g -fPIC -fvisibility=hidden -Wall -Wno-unused-function -Wno-unknown-pragmas -Icuda/emu
EMU_KERNEL_OBJS := $(patsubst kernels/%.cu,$(EMU_DIR)/%.o,$(CU_SRC))
EMU_RUNTIME_OBJS := $(EMU_DIR)/scheduler.o $(EMU_DIR)/driver.o $(EMU_DIR)/cublas.o $(EMU_DIR)/async.o

$(EMU_DIR)/%.o: kernels/%.cu kernels/common.cuh cuda/emu/emu.h cuda/emu/emu_mma.h cuda/emu/runtime.h
	@mkdir -p $(EMU_DIR)
	$(EMU_CXX) $(EMU_FLAGS) -x c++ -include cuda/emu/emu.h -DRF_EMU_MODULE='"$*"' -c -o $@ $<

$(EMU_DIR)/attention_fa2.o $(EMU_DIR)/attention_fa2_bwd.o $(EMU_DIR)/conv_implicit.o: kernels/mma.cuh
$(EMU_DIR)/conv.o $(EMU_DIR)/conv_implicit.o: kernels/conv.cuh

$(EMU_DIR)/%.o: cuda/emu/%.cc cuda/emu/runtime.h
	@mkdir -p $(EMU_DIR)
	$(EMU_CXX) $(EMU_FLAGS) -c -o $@ $<

# A __shared__ array declared inside a function template escapes the section
# the emulator poisons per block (g++ ignores the attribute there): kernels
# keep such arrays in dynamic shared memory, and this check holds them to it.
$(EMU_LIB): $(EMU_KERNEL_OBJS) $(EMU_RUNTIME_OBJS)
	@bad=$$(for o in $(EMU_KERNEL_OBJS); do \
		objdump -t $$o | awk -v f=$$o '/_ZZ/ && !/emu_shared/ && !/_ZGV/ {print f ": " $$NF}'; done); \
	if [ -n "$$bad" ]; then echo "__shared__ arrays in templates (use DYNAMIC_SHARED):" >&2; echo "$$bad" | c++filt >&2; exit 1; fi
	$(EMU_CXX) -shared -o $@ $^

$(EMU_DIR)/selftest: cuda/emu/selftest.cc cuda/emu/emu.h cuda/emu/emu_mma.h kernels/mma.cuh $(EMU_RUNTIME_OBJS)
	$(EMU_CXX) $(EMU_FLAGS) -include cuda/emu/emu.h -DRF_EMU_MODULE='"selftest"' -o $@ $(filter-out %.h %.cuh,$^)

emu: $(EMU_LIB) $(EMU_DIR)/selftest

EMU_ENV := RFNET_LIBCUDA=$(abspath $(EMU_LIB)) RFNET_REQUIRE_GPU=1
EMU_TEST := $(GO) test -count=1 -tags cuda -timeout 40m
EMU_PKGS := ./cuda ./pipeline/rfnet
# SAM adds no kernel of its own (its ops are the UNet's), so its model test
# runs in the cuBLAS pass only: the reverse-order pass would spend minutes more
# minutes on kernels the other packages already race-check.
EMU_SAM := ./sam

# Of cmd's tests the passes run only the 5 (of 84 when this was written) that
# use the cuda backend or behave otherwise with the cuda tag, as
# scripts/cmd-cuda-tests.sh finds them in the sources (a new one is picked up
# by itself; finding none fails the pass). The others run on the CPU whatever
# the tag, since cmd's TestMain sets RFNET_DEVICE=cpu, and already ran in
# `make test`: each pass repeated minutes of them for nothing. The recipe
# sets $tests from the script; EMU_CMD_RUN turns it into -run.
EMU_CMD_RUN = -run "^($$tests)\$$" ./cmd/...

# -count=1: Go's test cache does not see the variables the C side reads.
# The passes are independent: `make -j2 test-emu` runs two at a time.
test-emu: test-emu-cublas test-emu-gemm test-emu-tf32

emu-selftest: kernels emu
	$(EMU_DIR)/selftest

test-emu-cublas: emu-selftest
	$(EMU_ENV) RFNET_LIBCUBLAS=$(abspath $(EMU_LIB)) $(EMU_TEST) $(EMU_PKGS) $(EMU_SAM)
	tests=$$(scripts/cmd-cuda-tests.sh) && $(EMU_ENV) RFNET_LIBCUBLAS=$(abspath $(EMU_LIB)) $(EMU_TEST) $(EMU_CMD_RUN)

# The built-in GEMM pass also runs blocks, warps and lanes last to first
# (RFNET_EMU_ORDER=reverse): a race the default order hides shows there.
# Of the diffusers runs it takes one prompt per model and scheduler (the
# second prompt of each pair runs the same kernels on other tokens); they
# were 1640 s of the cuda package's 1675 s on the emulator, and the
# cuBLAS pass still runs all of them.
EMU_GEMM_SKIP := -skip 'TestTextToImageMatchesDiffusers/.*-(ddim-negative|dpm\+\+2m-long|euler-punctuation|pndm-punctuation)/'
test-emu-gemm: emu-selftest
	$(EMU_ENV) RFNET_LIBCUBLAS=none RFNET_EMU_ORDER=reverse $(EMU_TEST) $(EMU_GEMM_SKIP) $(EMU_PKGS)
	tests=$$(scripts/cmd-cuda-tests.sh) && $(EMU_ENV) RFNET_LIBCUBLAS=none RFNET_EMU_ORDER=reverse $(EMU_TEST) $(EMU_CMD_RUN)

# float32 products on TF32 (RFNET_CUDA_TF32=1; the emulated cuBLAS rounds
# their inputs as the tensor cores do): the f32 parity and model tests.
TF32_RUN := -run '^(TestParityWithCPU|TestKernelEdges|TestGuidanceGradientOnGPU)$$/^f32$$'
TF32_RUN_MODELS := -run '^(TestModelsMatchCPU|TestTextToImageMatchesDiffusers)$$/./^f32$$'
test-emu-tf32: emu-selftest
	$(EMU_ENV) RFNET_LIBCUBLAS=$(abspath $(EMU_LIB)) RFNET_CUDA_TF32=1 $(EMU_TEST) $(TF32_RUN) ./cuda ./pipeline/rfnet
	$(EMU_ENV) RFNET_LIBCUBLAS=$(abspath $(EMU_LIB)) RFNET_CUDA_TF32=1 $(EMU_TEST) $(TF32_RUN_MODELS) ./cuda

clean:
	rm -rf bin build cuda/fatbin
