"""Lambda-style handlers the benchmarks run in `esm worker` (imported as `benchmarks.handlers.*`)."""
