"""clusterbus: engine/bus."""
