"""Channel intelligence: which channel (and when) for each customer."""
