"""gar_ros.runtime."""
