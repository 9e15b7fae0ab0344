"""gar_ros.context."""
