# Source me: `source scripts/env.sh` gives this shell the whole gar_ros environment:
# the venv, the ROS 2 wheels, the colcon-built interfaces, and the gar_ros sources, so that
# `gar-ros`, `python -m gar_ros.ros.node` and the tests run from any directory.
_gar_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -f "$_gar_root/install/local_setup.bash" ]; then
  echo "gar_ros: environment not built yet; run 'make env' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_gar_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_gar_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_gar_root/.venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# shellcheck disable=SC1091
source "$_gar_root/install/local_setup.bash"
# Sources first: the checkout's gar_ros wins; pkgutil.extend_path adds the install tree's
# gar_ros (generated msg/srv/action) to the package path.
export PYTHONPATH="$_gar_root${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$_gar_root/scripts/bin:$PATH"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export HF_HUB_OFFLINE=1
export GAR_ROS_ROOT="$_gar_root"
unset _gar_root
