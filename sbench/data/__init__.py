"""Object payloads (fill, dedup, compress) and object size distributions."""
