"""Use cases that wire the package together (ingest, run, dispatch, simulate)."""
