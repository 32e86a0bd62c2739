"""Thin readers faithful to each client library."""
