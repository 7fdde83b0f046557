"""The label of a head with no finding at or above its threshold, shared by the engine
(`lib.classify`) and the readers of stored tables that must not import torch (`lib.store`,
`lib.trajectory`, the pages)."""

UNCLASSIFIED = "unclassified"
