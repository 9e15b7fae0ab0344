"""A rosbags typestore that knows the standard ROS 2 messages and gar_ros's own messages.

Our ``.msg`` files are read from the package's share directory (``ament_index``: the colcon
install) when it exists, else from the source tree (``<repo>/msg``). Type names follow ROS 2
(``gar_ros/msg/RegionArray``); :func:`normalize_msgtype` also accepts ROS 1 style names
without ``/msg/`` (``sensor_msgs/Image``).
"""
from __future__ import annotations

import functools
from pathlib import Path

from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from gar_ros.errors import BagError

PACKAGE = "gar_ros"
#: Our message types, in dependency order.
GAR_MSG_NAMES: tuple[str, ...] = (
    "Region",
    "RegionArray",
    "RegionDescription",
    "RegionDescriptionArray",
    "Query",
    "Answer",
)
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
REGION_ARRAY = f"{PACKAGE}/msg/RegionArray"
QUERY = f"{PACKAGE}/msg/Query"
ANSWER = f"{PACKAGE}/msg/Answer"
DESCRIPTIONS = f"{PACKAGE}/msg/RegionDescriptionArray"
STRING = "std_msgs/msg/String"


def msg_dir_candidates() -> list[Path]:
    """Directories that may hold gar_ros's ``.msg`` files, preferred first."""
    dirs: list[Path] = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            dirs.append(Path(get_package_share_directory(PACKAGE)) / "msg")
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    dirs.append(Path(__file__).resolve().parents[2] / "msg")
    return dirs


def find_msg_dir() -> Path:
    """The first candidate directory holding every gar_ros ``.msg`` file; BagError if none."""
    for d in msg_dir_candidates():
        if all((d / f"{name}.msg").is_file() for name in GAR_MSG_NAMES):
            return d
    raise BagError(
        "gar_ros message definitions not found (looked in "
        + ", ".join(str(d) for d in msg_dir_candidates())
        + ")"
    )


def normalize_msgtype(msgtype: str) -> str:
    """``pkg/Type`` -> ``pkg/msg/Type``; ``pkg/msg/Type`` unchanged; leading '/' dropped."""
    parts = [p for p in msgtype.strip().split("/") if p]
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    return "/".join(parts)


@functools.lru_cache(maxsize=4)
def _cached_store(msg_dir: str) -> Typestore:
    store = get_typestore(Stores.ROS2_KILTED)
    typs = {}
    for name in GAR_MSG_NAMES:
        text = (Path(msg_dir) / f"{name}.msg").read_text(encoding="utf-8")
        typs.update(get_types_from_msg(text, f"{PACKAGE}/msg/{name}"))
    try:
        store.register(typs)
    except TypesysError as err:
        raise BagError(f"cannot register gar_ros messages from {msg_dir}: {err}") from err
    return store


def gar_typestore(msg_dir: str | Path | None = None) -> Typestore:
    """The ROS 2 Kilted typestore plus gar_ros's messages (cached; do not register into it).

    Use :func:`extended_typestore` for a private copy that a bag's own definitions may extend.
    """
    return _cached_store(str(msg_dir or find_msg_dir()))


def extended_typestore(msg_dir: str | Path | None = None) -> Typestore:
    """A fresh typestore (Kilted + gar_ros) that the caller may register more types into."""
    base = gar_typestore(msg_dir)
    store = get_typestore(Stores.EMPTY)
    store.fielddefs.update(base.fielddefs)
    store.types.update(base.types)
    return store


def register_definition(store: Typestore, msgtype: str, msgdef: str) -> None:
    """Register one ``.msg`` text (a bag's embedded definition) under ``msgtype``.

    Raises BagError when the text is empty or cannot be parsed or conflicts with a known type.
    """
    if not msgdef.strip():
        raise BagError(f"message type {msgtype!r} has no definition in the bag")
    try:
        store.register(get_types_from_msg(msgdef, msgtype))
    except (TypesysError, ValueError, KeyError) as err:
        raise BagError(f"cannot use the bag's definition of {msgtype!r}: {err}") from err
