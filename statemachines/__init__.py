"""clusterbus: statemachines."""
