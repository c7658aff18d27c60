"""Purchase cycles: when a customer is due to buy a category again, and the daily pass.

``model`` is pure (intervals, regularity, shrinkage, the reminder date); ``daily``
runs it over the store and emits ``purchase_cycle.due`` events. See README.md in this
folder.
"""
