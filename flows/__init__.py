"""Prefect flows: thin wrappers over the omni_journey package (see prefect.yaml).

Entry points (``prefect.yaml``): ``flows/ingest.py:ingest``, ``flows/advance.py:advance``,
``flows/dispatch.py:dispatch_outbox``, ``flows/segments.py:segments_flow``,
``flows/purchase_cycles.py:purchase_cycles``, ``flows/train.py:train_channel_model`` and
``flows/report.py:report``.
Only this folder (and ``omni_journey.ingest.announce``) imports Prefect.
"""
