"""Uploaded files checked by content: images re-encoded without metadata, videos by container."""
