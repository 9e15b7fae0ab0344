"""gar_ros.query."""
