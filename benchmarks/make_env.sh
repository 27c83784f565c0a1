#!/bin/sh
# The benchmarks' own environment: genlab plus the peer libraries it is compared with.
# Peers are installed with --no-deps next to the pinned CPU torch (a plain requirement would pull
# a CUDA build), then their plain dependencies by hand. They are never genlab dependencies.
#   sh benchmarks/make_env.sh [VENV]      (default .venv-bench)
set -e
VENV=${1:-.venv-bench}
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q -e '.[data]'
"$VENV/bin/python" -m pip install -q --no-deps curvlinops-for-pytorch pyhessian hessian-eigenthings \
    backpack-for-pytorch opacus cockpit-for-pytorch
# plain dependencies of the peers (cockpit imports pkg_resources: setuptools<81)
"$VENV/bin/python" -m pip install -q einops unfoldNd opt_einsum 'setuptools<81' json_tricks \
    pandas tqdm scipy numpy matplotlib jaxtyping
# pure-Python helpers of curvlinops and cockpit, --no-deps so that nothing asks for another torch
"$VENV/bin/python" -m pip install -q --no-deps einconv linear_operator seaborn
# BackPACK lists torchvision, which it does not import for the models benchmarked here.
