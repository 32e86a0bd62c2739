"""Who processes which shard: Kafka group assignments, store leases (the lease taker), fencing."""
