"""Label words shared by the engine (`lib.classify`) and the readers of stored tables, which
must not import torch (`lib.trajectory`, `lib.charts.training`, the pages)."""

UNCLASSIFIED = "unclassified"
"""The label of a head with no finding at or above its threshold."""
SUPPRESSION_LABEL = "suppression: "
"""Prefix of a suppression finding's label, e.g. `suppression: name_copying`."""
