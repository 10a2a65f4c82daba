#!/usr/bin/env bash
# The GPU device check: proves `bench run --device cuda` on one NVIDIA GPU
# (an H100 or H200) in about five minutes, torch and JAX only, and writes
# everything it produces under OUTDIR:
#
#   device_check.log       every command and its output
#   summary.txt            the figures to quote: R per framework and mode with
#                          CIs, the three-way timing agreement, the wide MLP's
#                          fraction of peak, M on the depth sweep, throttling
#   crosscheck*.json       bench vs CUDA events vs triton's do_bench
#   results/               the Parquet results of the runs below
#   report.html            one HTML report over all of them
#
# Usage: scripts/device_check.sh OUTDIR       (PYTHON=python3.12 to choose)
#
# The steps run in order of what they prove, each within its own limit and
# all within DEVICE_CHECK_BUDGET_S (default 360 s), keeping the last 30 s for
# the report and the summary; a step with no time left is skipped and said so.
# Seen on an H200 (2026-11-26): torch takes about 1 s per quick case, JAX 1
# to 20 s (XLA compiles and autotunes five programs per case). Seen on an H100
# (2026-11-26, third session): the quick run of torch and JAX took about 135 s,
# and the sweep with the default 3 processes finished 9 of its 30 cases in 90 s
# (JAX compiles again in each process), so the sweep runs one process: it
# checks R and M against theory, not reruns. The default budget covers the
# steps up to the GPU tests; DEVICE_CHECK_BUDGET_S=480 runs every step.
#
# It needs no network: bench is installed without dependencies into the
# interpreter that already has torch, JAX, pandas, pyarrow, scipy, rich,
# matplotlib, jinja2, nvidia-ml-py and pytest. Without a GPU it stops at once
# with one line and exit code 2. Each step has a time limit; a step that
# fails or runs out of time is reported and the others still run (a run cut
# short keeps the cases it finished). Exit code 1 when any step failed.
set -uo pipefail

out="${1:-}"
if [[ -z "$out" ]]; then
    echo "usage: scripts/device_check.sh OUTDIR" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "device_check: no NVIDIA GPU here (nvidia-smi finds none): run it on a machine with one" >&2
    exit 2
fi
if ! "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' >/dev/null 2>&1; then
    echo "device_check: $python has no torch that sees the GPU: install a CUDA build of torch" >&2
    exit 2
fi

mkdir -p "$out/results"
out="$(cd "$out" && pwd)"
log="$out/device_check.log"
results="$out/results"
cd "$root"
: >"$log"
failed=()
started=$SECONDS

budget="${DEVICE_CHECK_BUDGET_S:-360}"
reserve=30  # for the report and the summary, which need the results

step() {  # step NAME SECONDS COMMAND...: run with a time limit (SIGINT first, so bench saves)
    local name="$1" limit="$2"
    shift 2
    local left=$((budget - (SECONDS - started)))
    [[ "$name" == "bench report" || "$name" == "summary" ]] || left=$((left - reserve))
    if [[ $left -lt 15 ]]; then
        printf '\n==== %s: skipped, no time left in the %ss budget ====\n' "$name" "$budget" | tee -a "$log"
        failed+=("$name (no time left)")
        return
    fi
    [[ $limit -le $left ]] || limit=$left
    printf '\n==== %s (limit %ss, at %ss) ====\n$ %s\n' "$name" "$limit" "$((SECONDS - started))" "$*" \
        | tee -a "$log"
    local t0=$SECONDS rc=0
    timeout -s INT -k 20 "$limit" "$@" >>"$log" 2>&1 || rc=$?
    printf -- '---- %s: exit %s after %ss\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$log"
    # 130: bench was interrupted at its limit and kept the cases it finished.
    [[ $rc -eq 0 ]] || failed+=("$name (exit $rc)")
}

# bench itself, without dependencies (no network there); PYTHONPATH covers
# an interpreter where pip cannot write.
"$python" -m pip install --no-deps --no-build-isolation -q -e "$root" >>"$log" 2>&1 \
    || echo "pip install failed; using PYTHONPATH" >>"$log"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
bench=("$python" -m bench)
wide="batch=8192,width=4096,depth=4"
sweep=()
for depth in 1 2 4 8; do sweep+=(--case "batch=4096,width=1024,depth=$depth"); done

step "nvidia-smi" 20 nvidia-smi
step "bench env" 30 "${bench[@]}" env
step "bench run --quick (torch eager, jax jit)" 170 "${bench[@]}" run --device cuda --quick \
    --framework torch,jax --results "$results" --machine gpu --no-report
step "bench run: depth sweep and wide MLP, L2 flushed" 90 "${bench[@]}" run --device cuda \
    --framework torch,jax --suite mlp_regression "${sweep[@]}" --case "$wide" --l2 flush --budget 1 \
    --processes 1 --results "$results" --machine gpu --no-report
step "cross-check, warm L2" 30 "$python" scripts/crosscheck_gpu.py --json "$out/crosscheck.json"
# The bench runs above already prove the CLI on the GPU: its test is left out here.
step "pytest -m gpu" 70 "$python" -m pytest -m gpu -q -p no:cacheprovider -k "not bench_run_on_cuda" \
    tests/backends/test_gpu.py
step "bench run --quick torch:compile (mlp)" 60 "${bench[@]}" run --device cuda --quick \
    --framework torch --mode compile --suite mlp_regression --results "$results" --machine gpu --no-report
step "cross-check, L2 flushed" 30 "$python" scripts/crosscheck_gpu.py --l2 flush --budget 1 \
    --json "$out/crosscheck_flush.json"
step "bench report" 20 "${bench[@]}" report "$results" -o "$out/report.html"
step "summary" 10 "$python" "$root/scripts/device_summary.py" "$results" "$out" "$wide"

cat "$out/summary.txt" 2>/dev/null
printf '\ndevice check finished in %ss\n' "$((SECONDS - started))"
if [[ ${#failed[@]} -gt 0 ]]; then
    printf 'failed steps: %s\n' "${failed[@]}"
    exit 1
fi
echo "every step passed"
