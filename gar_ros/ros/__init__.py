"""gar_ros.ros."""
