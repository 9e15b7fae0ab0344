"""gar_ros.evaluation."""
