"""clusterbus: engine/messages."""
