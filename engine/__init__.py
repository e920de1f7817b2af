"""clusterbus: engine."""
