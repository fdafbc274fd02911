#!/bin/sh
# Install torch==VERSION, CPU build, into the venv whose python is $1 (run by `make` setup).
#   sh tools/install_torch.sh .venv/bin/python 2.13.0 https://download.pytorch.org/whl/cpu
# 1. already installed at that version: nothing to do;
# 2. a wheel pip can find without an index (a wheel folder in pip's config, as CI has): use it;
# 3. Linux: PyTorch's CPU index (PyPI's Linux torch pulls several GB of CUDA libraries);
#    unreachable -> fails within seconds (--timeout 15 --retries 0) and we go on;
# 4. the standard index: on macOS that build is CPU-only already; on Linux it is the CUDA one.
# An empty INDEX skips step 3.
set -u
PY=$1
VERSION=$2
INDEX=${3:-}
PIP="$PY -m pip install --quiet --disable-pip-version-check"

have=$("$PY" -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null)
case "$have" in
  "$VERSION"|"$VERSION"+*) echo "torch $have already installed"; exit 0 ;;
esac

if $PIP --no-index --no-deps "torch==$VERSION" 2>/dev/null; then
  echo "torch $VERSION: installed from a local wheel"
elif [ "$(uname -s)" = "Linux" ] && [ -n "$INDEX" ] &&
     $PIP --no-deps --timeout 15 --retries 0 --index-url "$INDEX" "torch==$VERSION"; then
  echo "torch $VERSION: CPU build from $INDEX"
elif [ "$(uname -s)" = "Linux" ] && [ -n "$INDEX" ]; then
  echo "torch: $INDEX is unreachable; installing torch $VERSION from the standard index" \
       "(on Linux that build includes CUDA libraries: several GB)"
fi
# torch's own dependencies (sympy, networkx, ...) come from the standard index; if torch is not
# installed yet, this installs it from there too (step 4).
$PIP "torch==$VERSION"
