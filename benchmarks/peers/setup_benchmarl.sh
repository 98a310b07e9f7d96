#!/usr/bin/env bash
# Creates (or completes) the separate virtual environment that BenchMARL runs from for the peer
# benchmark. BenchMARL is never a dependency of marl-lsf: it is not in pyproject.toml, not in
# marl-lsf's .venv and not in CI. Safe to run again: an existing venv is reused and pip skips
# what is already installed.
#
#   benchmarks/peers/setup_benchmarl.sh
#
# Environment variables:
#   BENCHMARL_VENV   where the venv goes (default: benchmarl-venv beside the repository, i.e.
#                    ../benchmarl-venv from the repository root; compare.py looks there too)
#   PYTHON           the interpreter that creates it (default: python3)
#   TORCH_INDEX_URL  an index for the torch and torchvision wheels, e.g.
#                    https://download.pytorch.org/whl/cpu where no CPU wheel of torch 2.13.0 is
#                    available locally and plain PyPI would bring the multi-GB CUDA build
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${BENCHMARL_VENV:-$(dirname "$REPO")/benchmarl-venv}"
PYTHON="${PYTHON:-python3}"
TORCH_PINS=("torch==2.13.0" "torchvision==0.28.0")

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
    "$VENV/bin/python" -m pip install --index-url "$TORCH_INDEX_URL" "${TORCH_PINS[@]}"
fi
# pettingzoo[mpe] brings pygame, which simple_spread needs; BenchMARL's own "pettingzoo" extra
# would install every PettingZoo family (pettingzoo[all]).
"$VENV/bin/python" -m pip install "${TORCH_PINS[@]}" "pettingzoo[mpe]==1.24.3" "benchmarl==1.5.2"
"$VENV/bin/python" - <<'EOF'
import benchmarl
import torch
import torchrl
from pettingzoo.mpe import simple_spread_v3

assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build; the benchmark expects the CPU wheel"
simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=False).reset(seed=0)
print(f"benchmarl {benchmarl.__version__}, torchrl {torchrl.__version__}, torch {torch.__version__}: ready")
EOF
echo "BenchMARL venv: $VENV"
