"""`esm status`: per mapping and partition, who owns it, where it stands, what went wrong."""
