"""The parts of `benchmarks/kafka_throughput_latency.py`: data set, baseline, engine, latency."""
