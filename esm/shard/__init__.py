"""One owned shard's processing, the same for every source: a Kafka partition, a Kinesis shard
and a DynamoDB Streams shard are each an ordered sequence of records that this process owns for
a while. Its records go to lanes; each lane cuts batches, invokes the function, applies the
failure policy and reports what completed; the shard turns completions into a fenced checkpoint
(esm.ownership). Nothing here imports a source or a client library."""
