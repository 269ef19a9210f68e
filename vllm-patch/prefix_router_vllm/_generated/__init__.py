"""Generated artefacts only (see scripts/gen_ingest_descriptor.py)."""
