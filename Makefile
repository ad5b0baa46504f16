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

.PHONY: build test test-short vet bench fuzz kernels cuda clean

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

# The CUDA build: each kernels/*.cu compiled by nvcc into a fatbin (SASS for
# sm_80..sm_90, PTX for newer cards) that the cuda package embeds, then the
# binary and the test binaries with the cuda tag. Install nvcc with
# ../shared/tools/install-cuda-toolkit.sh (Debian's CUDA 11.8).
cuda/fatbin/%.fatbin: kernels/%.cu kernels/common.cuh
	@mkdir -p cuda/fatbin
	$(NVCC) --fatbin $(CUDA_ARCH) -O3 -o $@ $<

kernels: $(FATBINS)

cuda: kernels
	$(GO) vet -tags cuda ./...
	$(GO) build -tags cuda -o $(BIN) ./cmd/rfnet-native
	$(GO) test -tags cuda -run '^$$' ./...

clean:
	rm -rf bin cuda/fatbin
