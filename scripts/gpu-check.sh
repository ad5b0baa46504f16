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
#                                short table, and writes report.txt, summary.txt
#                                and gpu-check-logs.tar.gz into $OUT (or
#                                gpu-check-out/), all within GPU_CHECK_BUDGET
#                                seconds (420 by default); GPU_CHECK_STEPS
#                                (parity,engine,torch,kernels,rfnet) picks
#                                groups; last, the run's record,
#                                docs/gpu-runs/DATE-CARD-COMMIT.json, into
#                                $OUT (docs/benchmarks.md, "GPU run records")
#
# With the device tool: build here, then run with carry ["bin/gpu"], command
# "scripts/gpu-check.sh run" and timeout_s 480. After a fix, rebuild and rerun
# what failed, e.g. "GPU_CHECK_STEPS=parity scripts/gpu-check.sh run".
set -uo pipefail
cd "$(dirname "$0")/.."

build() {
	set -e
	make kernels
	mkdir -p bin/gpu
	# The GPU machine gets the working tree without .git: the commit goes
	# into the binary, for the run's record (-dirty: with uncommitted changes).
	local commit
	commit=$(git rev-parse --short=12 HEAD)
	git diff --quiet HEAD || commit="$commit-dirty"
	go build -tags cuda -trimpath -ldflags="-s -w -X main.buildCommit=$commit" -o bin/gpu/rfnet-native ./cmd/rfnet-native
	go test -tags cuda -trimpath -ldflags='-s -w' -c -o bin/gpu/cuda.test ./cuda
	go test -tags cuda -trimpath -ldflags='-s -w' -c -o bin/gpu/rfnet.test ./pipeline/rfnet
	go test -tags cuda -trimpath -ldflags='-s -w' -c -o bin/gpu/cmd.test ./cmd/rfnet-native
	gzip -9 -n -f bin/gpu/rfnet-native bin/gpu/cuda.test bin/gpu/rfnet.test bin/gpu/cmd.test
	# CLIP's vocabulary for bench-engine --rfnet's prompts (1.3 MB; without
	# it the run uses testdata's tiny one: the cost is that of 77 tokens either way).
	local vocab="${CLIP_VOCAB:-/work/shared/data/clip/bpe_simple_vocab_16e6.txt.gz}"
	if [ -f "$vocab" ]; then mkdir -p bin/gpu/tokenizer && cp "$vocab" bin/gpu/tokenizer/; fi
	if [ -n "${REFENV:-}" ] && [ -d "$REFENV/diffusers/src/diffusers" ]; then
		rm -rf bin/gpu/refenv && mkdir -p bin/gpu/refenv
		cp -r "$REFENV/diffusers/src/diffusers" "$REFENV/hfhub/src/huggingface_hub" bin/gpu/refenv/
		find bin/gpu/refenv -name __pycache__ -prune -exec rm -rf {} +
	fi
	du -sh bin/gpu
}

run() {
	# The device tool brings back at most 8 files from $OUT: the logs are
	# written elsewhere and packed into $OUT/gpu-check-logs.tar.gz after
	# every step, beside summary.txt, so a run cut short still returns them.
	local out="${OUT:-gpu-check-out}" root="$PWD" bin=/tmp/gpu-check-bin logs
	if [ -n "${OUT:-}" ]; then logs=/tmp/gpu-check-logs; else logs="$out/logs"; fi
	mkdir -p "$out" "$bin" "$logs"
	# Every step gets at most what is left of the budget (GPU_CHECK_BUDGET
	# seconds from the start, 420 by default: inside the device tool's
	# 600-second command, and leaving a lease of 15 minutes time for a
	# second, shorter run after a fix), so the table is always printed.
	local budget="${GPU_CHECK_BUDGET:-420}"
	# $rows (exported as RFNET_GPU_ROWS) is a JSON-lines file to which any
	# step may append rows of the run's record, one JSON object a line with
	# exactly its row fields: {"engine", "model", "dtype", "call", "ms",
	# "tflops", "peak_gib"} (tflops and peak_gib may be null). gpu-record
	# puts every line in the record's rows (and fails on a bad one).
	local rows="$logs/rows.jsonl"
	export RFNET_GPU_ROWS="$rows"
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
	: >"$rows"
	local summary=()
	pack() { tar -czf "$out/gpu-check-logs.tar.gz" -C "$logs" . 2>/dev/null; }
	row() {
		summary+=("$(printf '%-44s %s' "$1" "$2")")
		printf '%s\n' "${summary[@]}" >"$out/summary.txt"
		pack
	}
	# slot LIMIT: the seconds a step may take, LIMIT or what is left of the budget.
	slot() { local left=$((budget - SECONDS)); echo $((left < $1 ? left : $1)); }
	# (Without nvidia-smi, e.g. a smoke test of this script on the CUDA emulator
	# with RFNET_LIBCUDA set, the card is just unnamed.)
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$logs/gpu.txt" ||
		echo "no nvidia-smi" | tee "$logs/gpu.txt"

	# step NAME LOG LIMIT CMD...: runs CMD (LIMIT seconds at most, less when
	# the budget is nearly spent) into $logs/LOG and returns its status; a
	# step with under 20 seconds left is skipped (status 125).
	step() {
		local name=$1 log=$2 t
		t=$(slot "$3")
		shift 3
		if [ "$t" -lt 20 ]; then
			echo "skipped: the budget of $budget s was spent" >"$logs/$log"
			return 125
		fi
		echo "[$SECONDS s] $name" >&2
		timeout "$t" "$@" >"$logs/$log" 2>&1
	}
	# outcome NAME LOG STATUS [DONE [FAILED]]: the row of a finished step,
	# with DONE (default "done") and FAILED (default "FAIL (see LOG)") as
	# its text when it passed or failed.
	outcome() {
		case $3 in
		0) row "$1" "${4:-done}" ;;
		124) row "$1" "TIMEOUT (see $2)" ;;
		125) row "$1" "SKIPPED (time budget spent)" ;;
		*) row "$1" "${5:-FAIL (see $2)}" ;;
		esac
	}
	# check NAME LOG CMD...: a test binary's run as one row, with the time
	# of a passing top-level test or the count of failing (sub)tests.
	check() {
		local name=$1 log=$2 st
		shift 2
		step "$name" "$log" 300 "$@"
		st=$?
		outcome "$name" "$log" $st "PASS $(sed -n "s/^--- PASS: $name (\([0-9.]*s\))\$/\1/p" "$logs/$log")" \
			"FAIL ($(grep -c -- '--- FAIL' "$logs/$log") failing; see $log)"
	}
	# engine MODEL DTYPE: bench-engine on random full-size weights, profiled.
	engine() {
		local base="engine-$1-$2" st
		local tok=bin/gpu/tokenizer/bpe_simple_vocab_16e6.txt.gz
		[ -f "$tok" ] || tok=testdata/tokenizer/tiny
		step "bench-engine $1 $2" "$base.txt" 240 "$bin/rfnet-native" bench-engine --device cuda --model "$1" --dtype "$2" --tokenizer "$tok" \
			--iters 5 --steps 50 --profile --json "$logs/$base.json"
		st=$?
		outcome "bench-engine $1 $2" "$base.txt" $st "$(awk '/^host side/ {exit} /^unet, batch 2/ {u=$(NF-5)} /^graph replay of the unet/ {g=$(NF-5)} /^vae decode/ {v=$(NF-5)} /^graph replay of the rfnet guidance/ {q=$(NF-5)} /^denoise/ {d=$(NF-5)} END {printf "unet %s ms (graph replay %s ms), guidance %s ms, vae %s ms, 50 steps %s ms", u, g, q, v, d}' "$logs/$base.txt")"
	}
	# rfnet_scenes MODEL DTYPE: bench-engine --rfnet, whole RFNet scenes of
	# 1, 2 and 4 objects at 512² and 50 steps, default and forced gating.
	rfnet_scenes() {
		local base="rfnet-$1-$2" st tok=bin/gpu/tokenizer/bpe_simple_vocab_16e6.txt.gz
		[ -f "$tok" ] || tok=testdata/tokenizer/tiny
		step "bench-engine --rfnet $1 $2" "$base.txt" 240 "$bin/rfnet-native" bench-engine --rfnet --device cuda --model "$1" --dtype "$2" \
			--tokenizer "$tok" --objects 1,2,4 --json "$logs/$base.json"
		st=$?
		outcome "bench-engine --rfnet $1 $2" "$base.txt" $st "$(awk '$1 == 2 && ($2 == "default" || $2 == "forced") {printf "%s2 obj %s %s ms", sep, $2, $3; sep = ", "}' "$logs/$base.txt")"
	}
	# GPU_CHECK_STEPS picks the groups to run (a second, shorter run after a
	# fix): parity, engine, torch, kernels, rfnet; all by default.
	local steps=",${GPU_CHECK_STEPS:-parity,engine,torch,kernels,rfnet},"
	want() { [[ $steps == *",$1,"* ]]; }

	# Parity first (one row per top-level test), then speed, the headline
	# figures first: SD 2.1-base fp16 against diffusers on the same card.
	if want parity; then
		for t in TestConformance TestParityWithCPU TestKernelEdges TestKernelGemmMatchesCPU TestTopKMeanMatchesCPU TestNewOncePerProcess TestGatherReportsBadID TestAllocatorReuse TestScopedCallsFreeIntermediates TestAttentionExplicitPath TestProfileCountsLaunches \
			TestAttentionFA2 TestAttentionFA2Strided TestAttentionFA2Backward TestAttentionTapeFA2 TestAttentionBackwardComposed \
			TestGraphReplaysOps TestGraphCaptureRefusesHostWork TestGraphUNetMatchesEager TestTextToImageGraphMatchesEager TestModelsMatchCPU TestTextToImageMatchesDiffusers; do
			check "$t" "$t.log" "$bin/cuda.test" -test.run "^$t\$" -test.v
		done
		# The diffusers runs again with the denoising loop eager (no CUDA graph).
		check "TestTextToImageMatchesDiffusers, eager" eager.log env RFNET_CUDA_GRAPHS=0 "$bin/cuda.test" -test.run '^TestTextToImageMatchesDiffusers$' -test.v
		check "fp32 products on TF32 (1e-3 per op, 1e-2 per model)" tf32.log env RFNET_CUDA_TF32=1 "$bin/cuda.test" -test.run '^(TestParityWithCPU|TestKernelEdges|TestModelsMatchCPU)$' -test.v
		check TestGuidanceGradientOnGPU guidance.log "$bin/rfnet.test" -test.run '^TestGuidanceGradientOnGPU$' -test.v
		check TestCommandsOnGPU commands.log "$bin/cmd.test" -test.run '^TestCommandsOnGPU$' -test.v
		grep -h "rel\. L2\|loss .* vs" "$logs"/TestModelsMatchCPU.log "$logs"/TestTextToImageMatchesDiffusers.log "$logs"/guidance.log >"$logs/parity-figures.txt" || true
	fi
	want engine && engine sd21 fp16
	if want torch; then
		# DIFFUSERS_SRC (a diffusers source tree) wins over the staged reference environment.
		step "torch baseline" torch-baseline.txt 240 env PYTHONPATH="$root/bin/gpu/refenv${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
			python3 scripts/torch_baseline.py "$logs/torch-baseline.json"
		outcome "torch baseline" torch-baseline.txt $?
	fi
	if want rfnet; then
		# RFNet's stage 2 in PyTorch (scripts/torch_rfnet.py: diffusers' UNet,
		# torch.autograd steering) on random full-size SD 2.1-base weights, fp16,
		# 512x512, 50 steps, the 2-object spec of testdata/torch-rfnet/spec
		# (pipeline/rfnet's TestTorchRFNetParity checks that it computes what we
		# do): one scene with the loss thresholds at 0 (forced) and one with the
		# defaults, and the median steering pass. Rows (engine torch-rfnet) go to
		# the JSON-lines file RFNET_GPU_ROWS (the docs/gpu-runs record).
		step "torch-rfnet sd21-base fp16" torch-rfnet.txt 300 env PYTHONPATH="$root/bin/gpu/refenv${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
			python3 scripts/torch_rfnet.py --random sd21-base --run-dir testdata/torch-rfnet/spec \
			--config testdata/torch-rfnet/scene2-512.json --device cuda --dtype fp16 --time forced,default --rows "$RFNET_GPU_ROWS"
		outcome "torch-rfnet sd21-base fp16" torch-rfnet.txt $? "$(sed -n 's/^{"mode": "\([a-z]*\)", "ms": \([0-9]*\).*"guidance_median_ms": \([0-9]*\).*/\1 \2 ms (steering pass \3 ms)/p' "$logs/torch-rfnet.txt" | paste -sd, -)"
	fi
	want engine && engine sd15 fp16
	if want kernels; then
		step "kernel benchmarks" kernels-bench.txt 150 env RFNET_CUDA_POISON=0 "$bin/cuda.test" -test.run '^$' -test.bench . -test.benchtime 20x
		outcome "kernel benchmarks" kernels-bench.txt $?
	fi
	want rfnet && rfnet_scenes sd21 fp16
	want engine && engine sd15 fp32
	# SAM's and the SDXL refiner's rows (issues 24 and 23), last: from what is left of the budget, 60 and 120 s at most.
	want engine && { step "bench-engine --sam fp16" engine-sam-fp16.txt 60 "$bin/rfnet-native" bench-engine --sam --device cuda --dtype fp16; outcome "bench-engine --sam fp16" engine-sam-fp16.txt $? "$(awk '/^host side/ {exit} /^sam per object/ {printf "per object %s ms", $(NF-5)}' "$logs/engine-sam-fp16.txt")"; }
	want engine && { step "bench-engine --refiner fp16" engine-refiner-fp16.txt 120 "$bin/rfnet-native" bench-engine --refiner --device cuda --dtype fp16 --iters 3 --tokenizer testdata/tokenizer/tiny --json "$logs/engine-refiner-fp16.json"; outcome "bench-engine --refiner fp16" engine-refiner-fp16.txt $? "$(awk '/^host side/ {exit} /^refiner unet/ {u=$(NF-5)} /^refine:/ {r=$(NF-5)} END {printf "unet %s ms, refine %s ms", u, r}' "$logs/engine-refiner-fp16.txt")"; }
	# diffusers' refiner beside it (scripts/torch_refiner.py: random full-size weights, fp16, the same
	# UNet call and 15-step refinement), rows to RFNET_GPU_ROWS; 120 s at most.
	want torch && { step "torch refiner fp16" torch-refiner.txt 120 env PYTHONPATH="$root/bin/gpu/refenv${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
		python3 scripts/torch_refiner.py --device cuda --dtype f16 --iters 3 --rows "$RFNET_GPU_ROWS"
		outcome "torch refiner fp16" torch-refiner.txt $? "$(awk '$1 ~ /\/unet$/ {u=$2} $1 ~ /\/refine15$/ {r=$2} END {printf "unet %s ms, refine %s ms", u, r}' "$logs/torch-refiner.txt")"; }

	# The report: everything into report.txt; the console gets the same
	# without the kernel profiles but SD 2.1 fp16's UNet (the tool shows the
	# last 12,000 characters).
	python3 scripts/compare.py "$logs" >"$logs/compare.txt" 2>&1
	# The record: docs/gpu-runs/DATE-CARD-COMMIT.json under $OUT, to commit
	# with the figures (docs/benchmarks.md, "GPU run records").
	local rec=(--out "$out/docs/gpu-runs" --gpu "$logs/gpu.txt" --rows "$rows")
	for f in "$logs"/engine-*.json; do [ -e "$f" ] && rec+=(--engine "$f"); done
	for f in "$logs"/rfnet-*.json; do [ -e "$f" ] && rec+=(--rfnet "$f"); done
	for f in "$logs"/Test*.log "$logs"/tf32.log "$logs"/guidance.log "$logs"/commands.log; do [ -e "$f" ] && rec+=(--parity "$f"); done
	[ -e "$logs/torch-baseline.json" ] && rec+=(--torch "$logs/torch-baseline.json")
	[ -e "$logs/kernels-bench.txt" ] && rec+=(--kernels "$logs/kernels-bench.txt")
	if "$bin/rfnet-native" gpu-record "${rec[@]}" >"$logs/record.txt" 2>&1; then
		row "gpu run record" "$(tail -1 "$logs/record.txt" | sed "s|^$out/||")"
	else
		row "gpu run record" "FAIL (see record.txt)"
	fi
	{
		echo "== gpu-check: $(cut -d, -f1 "$logs/gpu.txt")"
		printf '%s\n' "${summary[@]}"
		echo
		echo "== engine (rfnet-native bench-engine)"
		for f in "$logs"/engine-*.txt; do [ -e "$f" ] && sed '/^profile of one/,$d' "$f"; done
		echo
		echo "== RFNet scenes (bench-engine --rfnet)"
		for f in "$logs"/rfnet-*.txt; do [ -e "$f" ] && grep -v '^\(building\|warm-up\|timing\)' "$f"; done
		echo
		echo "== where SD 2.1 fp16's UNet call spends its device time"
		sed -n '/^profile of one unet/,/(whole call)/p' "$logs/engine-sd21-fp16.txt" 2>/dev/null
		echo
		echo "== rfnet-native / PyTorch (same card; ratio < 1: rfnet-native faster)"
		cat "$logs/compare.txt"
		echo
		echo "== kernels (GFLOP/s, TFLOP/s or GB/s; ns/op)"
		grep -E "^Benchmark" "$logs/kernels-bench.txt" 2>/dev/null | awk '{printf "%-70s %12s %s %s %s\n", $1, $3, $4, $5, $6}'
		echo
		echo "== PyTorch at the same shapes"
		cat "$logs/torch-baseline.txt" 2>/dev/null
		echo
		echo "== RFNet stage 2 in PyTorch (torch_rfnet.py)"
		tail -n 5 "$logs/torch-rfnet.txt" 2>/dev/null
		echo
		echo "== parity figures"
		cat "$logs/parity-figures.txt" 2>/dev/null
		echo
		echo "== summary ($SECONDS s of a $budget s budget)"
		printf '%s\n' "${summary[@]}"
	} >"$logs/console.txt"
	{
		cat "$logs/console.txt"
		echo
		echo "== kernel profiles of every call"
		for f in "$logs"/engine-*.txt; do [ -e "$f" ] && echo "-- $(basename "$f" .txt)" && sed -n '/^profile of one/,$p' "$f"; done
	} >"$out/report.txt"
	pack
	cat "$logs/console.txt"
	echo "(everything: report.txt; the logs: gpu-check-logs.tar.gz)"
	! printf '%s\n' "${summary[@]}" | grep -qE 'FAIL|TIMEOUT|SKIPPED'
}

case "${1:-}" in
build) build ;;
run) run ;;
*) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
