"""Launch gar_node: `ros2 launch gar_ros gar.launch.py model_path:=/path/to/GAR-1B`.

Arguments: model_path (empty = the embedded tiny model), backend, device, image_topic,
regions_topic, use_compressed, namespace, params_file (default: the installed config/gar.yaml).
The arguments override the parameters file.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("model_path", "", "GAR checkpoint directory (empty = the embedded tiny model)", str),
    ("backend", "torch", "inference backend: torch, onnxruntime or tensorrt", str),
    ("device", "cpu", "torch device: cpu, cuda, cuda:0", str),
    ("image_topic", "image", "sensor_msgs/Image topic (its /compressed when use_compressed)", str),
    ("regions_topic", "regions", "gar_ros/RegionArray topic", str),
    ("use_compressed", "false", "subscribe to sensor_msgs/CompressedImage", bool),
)


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, default, text, _ in ARGUMENTS
    ]
    declared.append(DeclareLaunchArgument("namespace", default_value="", description="node namespace"))
    declared.append(
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("gar_ros"), "config", "gar.yaml"]),
            description="parameters file of gar_node",
        )
    )
    overrides = {
        name: ParameterValue(LaunchConfiguration(name), value_type=kind)
        for name, _, _, kind in ARGUMENTS
    }
    node = Node(
        package="gar_ros",
        executable="gar_node",
        name="gar_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("params_file"), overrides],
    )
    return LaunchDescription([*declared, node])
