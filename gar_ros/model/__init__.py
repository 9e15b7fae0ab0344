"""gar_ros.model."""
