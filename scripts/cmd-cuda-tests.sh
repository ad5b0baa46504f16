#!/usr/bin/env bash
# Prints, as one -run alternation (TestA|TestB), the tests of cmd/ that use
# the cuda backend or behave otherwise in a cuda-tagged binary, for the
# emulator passes of the Makefile (test-emu-cublas, test-emu-gemm); the rest
# of cmd's tests run on the CPU whatever the build tag (its TestMain sets
# RFNET_DEVICE=cpu) and already ran in `make test`.
#
# A test is one when its file has the cuda build tag, or when its body names
# fixtures.GPU, cuda.New or cuda.Compiled, a "cuda" or "cuda:N" device, or
# clears $RFNET_DEVICE (then --device auto takes the GPU). Reading the list
# from the sources picks up a new GPU test without editing anything; finding
# none is an error, so a pass cannot quietly run nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=$(awk '
	FNR == 1 { tagged = 0 }
	/^\/\/go:build/ && /cuda/ && !/!cuda/ { tagged = 1 }
	/^func / { name = "" }
	/^func Test[A-Za-z0-9_]*\(t \*testing\.T\)/ {
		name = $2
		sub(/\(.*/, "", name)
		if (tagged) { print name; name = "" }
	}
	name != "" && /fixtures\.GPU\(|cuda\.(New|Compiled)|"cuda(:[0-9]+)?"|deviceEnv, ""/ { print name; name = "" }
' cmd/*/*_test.go | sort -u | paste -sd'|')
if [ -z "$tests" ]; then
	echo "cmd-cuda-tests: no cuda tests found in cmd/*/*_test.go" >&2
	exit 1
fi
echo "$tests"
