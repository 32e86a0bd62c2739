"""Who processes which shard: Kafka group assignments, store leases (later), fencing."""
