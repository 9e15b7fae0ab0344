"""``gar-ros node``: run gar_node without the ros2 command (ROS arguments pass through)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "node",
        help="run the gar_node ROS 2 node",
        description="Run gar_node (same as `python -m gar_ros.ros.node`). Arguments after the "
        "options are passed to ROS, e.g. `gar-ros node --model DIR -- --ros-args -r image:=/cam/image`.",
    )
    p.add_argument("--model", default=None, help="checkpoint directory (default: the embedded tiny model)")
    p.add_argument("--backend", default=None, help="torch, onnxruntime or tensorrt")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:0")
    p.add_argument("--params-file", default=None, help="parameters YAML (e.g. config/gar.yaml)")
    p.add_argument("ros_args", nargs=argparse.REMAINDER, help="ROS arguments (--ros-args ...)")
    p.set_defaults(func=_run_node)


def node_argv(args: argparse.Namespace) -> list[str]:
    """The node's argv: passthrough ROS arguments, then ours as -p/--params-file."""
    extra = [a for a in (args.ros_args or []) if a != "--"]
    ours: list[str] = []
    if args.params_file:
        ours += ["--params-file", args.params_file]
    for name, value in (("model_path", args.model), ("backend", args.backend), ("device", args.device)):
        if value is not None:
            ours += ["-p", f"{name}:={value}"]
    if not ours:
        return ["gar_node", *extra]
    if "--ros-args" in extra:
        return ["gar_node", *extra, *ours]
    return ["gar_node", *extra, "--ros-args", *ours]


def _run_node(args: argparse.Namespace) -> int:
    from gar_ros.ros.node import main

    return main(node_argv(args))
