"""clusterbus: engine/store."""
