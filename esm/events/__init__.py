"""Lambda event shapes, one module per source."""
