"""prefix-router's vLLM plugin: pushes batched KV-cache events, re-keyed to router prefix keys,
to the router's gRPC ingest API (proto/prefix_router/ingest/v1/ingest.proto)."""

__version__ = "0.1.0"
