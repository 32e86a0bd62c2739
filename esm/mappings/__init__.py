"""One runner per event source mapping and source kind: wires a reader to its shard consumers."""
