"""Pure-Python install of gar_ros (no ROS needed): ``pip install .`` gives the library and the
``gar-ros`` command. The ROS interfaces (gar_ros.msg/srv/action) come from ``colcon build``."""
from setuptools import find_packages, setup

setup(
    name="gar_ros",
    version="0.1.0",
    description="Region-level visual understanding for ROS 2 with GAR (Grasp Any Region)",
    license="Apache-2.0",
    packages=find_packages(include=["gar_ros", "gar_ros.*"]),
    package_data={"gar_ros": ["data/**/*"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "torch",
        "torchvision",
        "transformers>=5,<6",
        "safetensors",
        "tokenizers",
        "opencv-python-headless",
        "scipy",
        "pycocotools",
        "rosbags",
    ],
    extras_require={"onnx": ["onnx", "onnxruntime"], "test": ["pytest"]},
    entry_points={"console_scripts": ["gar-ros = gar_ros.cli:main"]},
)
