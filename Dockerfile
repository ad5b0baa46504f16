# The rfnet-native image: the cuda-tagged binary that `make cuda` builds (the
# kernels embedded in it), on NVIDIA's CUDA 11.8 runtime, serving the HTTP APIs
# of docs/serve-api.md as a non-root user. README.md ("Serving") has the build
# and run commands. No CI job builds it (there is no Docker engine there);
# deploy/manifests_test.go checks this file's shape offline.

# Build: nvcc and cuobjdump (for make's SASS check) come with the devel image;
# cgo and nvcc need a host compiler.
FROM nvidia/cuda:11.8.0-devel-ubuntu22.04 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential ca-certificates curl cuda-cuobjdump-11-8 \
 && rm -rf /var/lib/apt/lists/*

# Go from the official tarball, at the version go.mod's go line names (the
# manifests test holds the two together); GOTOOLCHAIN=local keeps the go
# command from fetching another toolchain.
ARG GO_VERSION=1.26.8
RUN curl -fsSL "https://go.dev/dl/go${GO_VERSION}.linux-amd64.tar.gz" | tar -C /usr/local -xz
ENV PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local

WORKDIR /src
# The modules first, so that a source change reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The fatbins of kernels/*.cu, their SASS check, vet, the binary and the test
# binaries with -tags cuda: one definition of the CUDA build, the Makefile's.
RUN make cuda BIN=/out/rfnet-native

# Run: the runtime image has cuBLAS (libcublas.so.11), which the backend
# dlopens; libcuda.so.1 is the host driver's, mounted by the NVIDIA container
# toolkit (docker run --gpus, or the Kubernetes device plugin). Without it the
# binary still starts and `--device auto` runs on the CPU.
FROM nvidia/cuda:11.8.0-runtime-ubuntu22.04
# CA certificates for the Hugging Face Hub and an LLM endpoint over HTTPS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A numeric non-root user, so that Kubernetes' runAsNonRoot can verify it.
# The volume folders are created owned by it: a fresh Docker volume copies
# that ownership.
RUN groupadd --gid 10001 rfnet \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/rfnet --shell /usr/sbin/nologin rfnet \
 && mkdir -p /cache/huggingface /data/serve \
 && chown -R 10001:10001 /cache /data

COPY --from=build /out/rfnet-native /usr/local/bin/rfnet-native

# /cache holds the Hugging Face cache (the weights, downloaded on first use)
# and rfnet-native's own (checkpoint hashes, LLM answers); /data holds serve's
# jobs and their files. Both outlive the container.
ENV HF_HOME=/cache/huggingface XDG_CACHE_HOME=/cache
VOLUME ["/cache", "/data"]

USER 10001:10001
WORKDIR /data
EXPOSE 7860
ENTRYPOINT ["rfnet-native"]
CMD ["serve", "--weights", "sd21-base", "--addr", "0.0.0.0:7860", "--data", "/data/serve"]
