#!/usr/bin/env bash
# GPU check of the CUDA backend, in two halves:
#
#   scripts/gpu-check.sh build   here, no GPU needed: the kernels, the cuda
#                                binary and the GPU test binaries into bin/gpu/
#                                (stripped and gzipped: all four fit the device
#                                tool's 64 MiB; with REFENV=/tmp/refenv also the
#                                diffusers + huggingface_hub sources of the
#                                reference environment, for the PyTorch baseline)
#   scripts/gpu-check.sh run     on the GPU machine, from the repository root
#                                (no Go there): parity of every kernel and of the
#                                tiny models against the CPU backend and the
#                                diffusers fixtures, the RFNet guidance gradient,
#                                bench-engine on full-size random SD 1.5 / 2.1,
#                                kernel benchmarks, the PyTorch baseline; prints a
#                                short table, full logs under $OUT (or gpu-check-out/)
#
# With the device tool: build here, then run with carry ["bin/gpu"] and
# command "scripts/gpu-check.sh run" (about 8 minutes on an H100).
set -uo pipefail
cd "$(dirname "$0")/.."

build() {
	set -e
	make kernels
	mkdir -p bin/gpu
	go build -tags cuda -trimpath -ldflags='-s -w' -o bin/gpu/rfnet-native ./cmd/rfnet-native
	go test -tags cuda -trimpath -ldflags='-s -w' -c -o bin/gpu/cuda.test ./cuda
	go test -tags cuda -trimpath -ldflags='-s -w' -c -o bin/gpu/rfnet.test ./pipeline/rfnet
	go test -tags cuda -trimpath -ldflags='-s -w' -c -o bin/gpu/cmd.test ./cmd/rfnet-native
	gzip -9 -n -f bin/gpu/rfnet-native bin/gpu/cuda.test bin/gpu/rfnet.test bin/gpu/cmd.test
	if [ -n "${REFENV:-}" ] && [ -d "$REFENV/diffusers/src/diffusers" ]; then
		rm -rf bin/gpu/refenv && mkdir -p bin/gpu/refenv
		cp -r "$REFENV/diffusers/src/diffusers" "$REFENV/hfhub/src/huggingface_hub" bin/gpu/refenv/
		find bin/gpu/refenv -name __pycache__ -prune -exec rm -rf {} +
	fi
	du -sh bin/gpu
}

run() {
	local out="${OUT:-gpu-check-out}" root="$PWD" bin=/tmp/gpu-check-bin
	mkdir -p "$out" "$bin"
	local f exe
	for f in bin/gpu/*.gz; do
		exe="$bin/$(basename "$f" .gz)"
		gunzip -c "$f" >"$exe" && chmod +x "$exe" || { echo "cannot unpack $f (run build first)" >&2; return 1; }
	done
	export RFNET_REQUIRE_GPU=1 RFNET_TESTDATA="$root/testdata"
	# cuBLAS: the system's, else the one PyTorch's wheels bring (not on the
	# loader's path; nvidia/cublas/lib in the CUDA 12 wheels, nvidia/cu13/lib
	# in CUDA 13's). The engine's report names the GEMM it found.
	local pipblas
	pipblas=$(python3 -c '
import glob, os, site
for d in site.getsitepackages() + [site.getusersitepackages()]:
    found = sorted(glob.glob(os.path.join(d, "nvidia", "**", "libcublas.so.*"), recursive=True))
    if found:
        print(os.path.dirname(found[-1]))
        break
' 2>/dev/null) && [ -n "$pipblas" ] &&
		export LD_LIBRARY_PATH="$pipblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	local rows=()
	row() { rows+=("$(printf '%-44s %s' "$1" "$2")"); }
	# (Without nvidia-smi, e.g. a smoke test of this script on the CUDA emulator
	# with RFNET_LIBCUDA set, the card is just unnamed.)
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt" ||
		echo "no nvidia-smi" | tee "$out/gpu.txt"

	# check NAME LOG CMD...: runs CMD (300 s at most) into $out/LOG and adds
	# a row with its verdict, the failing subtests and the time of a passing
	# top-level test.
	check() {
		local name=$1 log=$2
		shift 2
		timeout 300 "$@" >"$out/$log" 2>&1
		case $? in
		0) row "$name" "PASS $(sed -n "s/^--- PASS: $name (\([0-9.]*s\))\$/\1/p" "$out/$log")" ;;
		124) row "$name" "TIMEOUT after 300 s (see $log)" ;;
		*) row "$name" "FAIL ($(grep -c -- '--- FAIL' "$out/$log") failing; see $log)" ;;
		esac
	}
	# Parity: one line per top-level test.
	for t in TestConformance TestParityWithCPU TestKernelEdges TestKernelGemmMatchesCPU TestGatherReportsBadID TestAllocatorReuse TestModelsMatchCPU TestTextToImageMatchesDiffusers; do
		check "$t" "$t.log" "$bin/cuda.test" -test.run "^$t\$" -test.v
	done
	check "fp32 products on TF32 (1e-3 per op, 1e-2 per model)" tf32.log env RFNET_CUDA_TF32=1 "$bin/cuda.test" -test.run '^(TestParityWithCPU|TestKernelEdges|TestModelsMatchCPU)$' -test.v
	check TestGuidanceGradientOnGPU guidance.log "$bin/rfnet.test" -test.run '^TestGuidanceGradientOnGPU$' -test.v
	check TestCommandsOnGPU commands.log "$bin/cmd.test" -test.run '^TestCommandsOnGPU$' -test.v
	grep -h "rel\. L2\|loss .* vs" "$out"/TestModelsMatchCPU.log "$out"/TestTextToImageMatchesDiffusers.log "$out"/guidance.log >"$out/parity-figures.txt" || true

	# Speed: the engine on full-size random weights, then kernels and PyTorch at the same shapes.
	for cfg in "sd15 fp16" "sd15 fp32" "sd21 fp16"; do
		set -- $cfg
		timeout 420 "$bin/rfnet-native" bench-engine --device cuda --model "$1" --dtype "$2" --iters 5 --steps 50 \
			--json "$out/engine-$1-$2.json" >"$out/engine-$1-$2.txt" 2>"$out/engine-$1-$2.err" &&
			row "bench-engine $1 $2" "$(awk '/unet, batch 2/ {u=$(NF-5)} /vae decode/ {v=$(NF-5)} /denoise/ {d=$(NF-5)} END {printf "unet %s ms, vae %s ms, 50 steps %s ms", u, v, d}' "$out/engine-$1-$2.txt")" ||
			row "bench-engine $1 $2" "FAIL (see engine-$1-$2.err)"
	done
	RFNET_CUDA_POISON=0 timeout 300 "$bin/cuda.test" -test.run '^$' -test.bench . -test.benchtime 20x >"$out/kernels-bench.txt" 2>&1 ||
		row "kernel benchmarks" "FAIL (see kernels-bench.txt)"
	# DIFFUSERS_SRC (a diffusers source tree) wins over the staged reference environment.
	PYTHONPATH="$root/bin/gpu/refenv${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 timeout 300 \
		python3 scripts/torch_baseline.py "$out/torch-baseline.json" >"$out/torch-baseline.txt" 2>&1 ||
		row "torch baseline" "FAIL (see torch-baseline.txt)"

	echo
	echo "== gpu-check: $(cut -d, -f1 "$out/gpu.txt")"
	printf '%s\n' "${rows[@]}"
	echo
	echo "== engine (rfnet-native bench-engine)"
	cat "$out"/engine-*.txt 2>/dev/null
	echo
	echo "== rfnet-native / PyTorch (same card; ratio < 1: rfnet-native faster)"
	python3 scripts/compare.py "$out" | tee "$out/compare.txt"
	echo
	echo "== kernels (GFLOP/s; ns/op)"
	grep -E "^Benchmark" "$out/kernels-bench.txt" | awk '{printf "%-70s %12s %s %s %s\n", $1, $3, $4, $5, $6}'
	echo
	echo "== PyTorch at the same shapes"
	cat "$out/torch-baseline.txt"
	echo
	echo "== parity figures"
	cat "$out/parity-figures.txt"
	echo
	echo "== summary"
	printf '%s\n' "${rows[@]}"
	! printf '%s\n' "${rows[@]}" | grep -qE 'FAIL|TIMEOUT'
}

case "${1:-}" in
build) build ;;
run) run ;;
*) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
