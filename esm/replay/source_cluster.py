"""Which Kafka cluster `kafka://topic` means for replay (pure: reads only the loaded config).

The engine writes `kafka://topic` to the mapping's own cluster. Replay has no mapping, so it
takes the cluster of the Kafka mappings that write their failures to that URI, or failing
that, of the Kafka mappings that invoke the function being replayed into, when they all agree
on one cluster.
"""

from __future__ import annotations

from esm.config import EsmConfig


def source_cluster_for(uri: str, config: EsmConfig, function: str) -> tuple[str, ...] | None:
    """The bootstrap servers for `uri`, or None when the config names no single Kafka cluster."""
    kafka_mappings = [
        (mapping, servers)
        for mapping in config.EventSourceMappings
        if (servers := mapping.kafka_bootstrap_servers)
    ]
    writers = [
        servers
        for mapping, servers in kafka_mappings
        if (mapping.on_failure_destination or "").strip() == uri.strip()
    ]
    candidates = writers or [
        servers for mapping, servers in kafka_mappings if mapping.function_name == function
    ]
    # Keyed by the set of brokers: the same cluster listed in another order is one cluster.
    clusters: dict[frozenset[str], tuple[str, ...]] = {}
    for servers in candidates:
        clusters.setdefault(frozenset(servers), servers)
    return next(iter(clusters.values())) if len(clusters) == 1 else None


def names_own_cluster(uri: str) -> bool:
    """Whether `uri` is AWS's `kafka://topic` form (no brokers: the mapping's own cluster)."""
    text = uri.strip()
    return text.lower().startswith("kafka://") and "/" not in text[len("kafka://") :]
