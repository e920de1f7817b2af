"""clusterbus: handlers."""
