"""Ingestion: events and customer profiles into the store.

Records checked into rows (``event_rows``, ``profile_rows``), import files read in
batches (``readers``) and into checked chunks, in a reader process for large files
(``import_chunks``), the transactions that store them (``events``, ``profiles``,
``files``; ``intake`` gathers their entry points), and the Prefect events that announce
what was stored (``announce``). Nothing is imported here: the reader process imports
``import_chunks`` and the row checks alone and must start fast.
"""
