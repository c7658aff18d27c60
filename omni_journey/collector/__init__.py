"""The HTTP collector: the Segment Spec API, signed-link pages and provider feedback.

``app`` (the ASGI app and its routes), ``segment_protocol`` (Segment Spec messages ->
our records, pure) and ``link_pages`` (one-click unsubscribe and tracked clicks). See
README.md in this folder.
"""
