"""clusterbus: simulator."""
