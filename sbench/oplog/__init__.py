"""Op-logs in s3dlio's format: capture of every storage call, reading, sorting, merging and statistics."""
