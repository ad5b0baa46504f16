#!/usr/bin/env bash
# Static checks of the compiled kernels (no GPU needed): reads the sm_90 SASS
# of every cuda/fatbin/*.fatbin with cuobjdump and fails when a kernel
#   - uses local memory (LDL/STL: a register array indexed at run time, or a
#     spill), or
#   - reaches memory through generic LD/ST (a shared-memory pointer whose
#     address space the compiler lost, e.g. rebuilt from an integer: slower
#     loads, 64-bit address arithmetic, and no ldmatrix for WMMA).
# Known exceptions are listed with the reason. Run by `make cuda`.
set -euo pipefail
cd "$(dirname "$0")/.."
# nvcc 11.8's bf16 WMMA loads and stores take generic pointers (its f16 ones
# become LDS and ldmatrix): the bf16 WMMA GEMM keeps some generic accesses
# until it issues mma PTX itself, as attention_fa2 does (kernels/mma.cuh).
generic_ok='^(gemm_wmma_bf16)$'
command -v cuobjdump >/dev/null || { echo "sass-check: cuobjdump not found (install the CUDA toolkit)" >&2; exit 1; }
bad=0
for f in cuda/fatbin/*.fatbin; do
	report=$(cuobjdump -sass -arch sm_90 "$f" | awk '
		/Function :/ { fn = $3; seen[fn] = 1 }
		/[ \t](LDL|STL)[ .]/ { local_[fn]++ }
		/[ \t](LD|ST)\.E/ { generic[fn]++ }
		END { for (k in seen) printf "%s %d %d\n", k, local_[k] + 0, generic[k] + 0 }')
	[ -n "$report" ] || { echo "sass-check: no sm_90 code in $f" >&2; bad=1; continue; }
	while read -r fn local generic; do
		if [ "$local" -gt 0 ]; then
			echo "sass-check: $fn ($f) uses local memory ($local LDL/STL instructions)" >&2
			bad=1
		fi
		if [ "$generic" -gt 0 ] && ! [[ $fn =~ $generic_ok ]]; then
			echo "sass-check: $fn ($f) has $generic generic LD/ST instructions (a shared pointer that lost its address space?)" >&2
			bad=1
		fi
	done <<<"$report"
done
[ $bad -eq 0 ] && echo "sass-check: $(ls cuda/fatbin/*.fatbin | wc -l) fatbins, no local memory, no unexpected generic loads or stores"
exit $bad
