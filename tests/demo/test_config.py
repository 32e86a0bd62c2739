from __future__ import annotations

from pathlib import Path

from esm.config import KafkaSource, load_config
from esm.demo.config import DemoSetup, write_demo_config


def test_the_generated_config_is_valid_and_says_what_the_demo_needs(tmp_path: Path) -> None:
    setup = DemoSetup("127.0.0.1:9092", "orders", "g-demo", "127.0.0.1:50051", 4, tmp_path / "s.db", 9200)
    loaded = load_config(write_demo_config(tmp_path / "esm-demo.yaml", setup))
    assert loaded.warnings == []
    config = loaded.config
    assert config.Store == f"sqlite:///{(tmp_path / 's.db').resolve()}"
    assert (config.Metrics.Host, config.Metrics.Port) == ("127.0.0.1", 9200)
    assert config.function("orders").Endpoints == ("127.0.0.1:50051",)
    mapping = config.EventSourceMappings[0]
    assert mapping.batching_window_seconds == 0
    source = mapping.source
    assert isinstance(source, KafkaSource)
    assert (source.topic, source.consumer_group_id) == ("orders", "g-demo")
    assert mapping.kafka_consumer_kwargs()["session_timeout_ms"] == 1500
