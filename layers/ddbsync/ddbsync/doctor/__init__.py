"""``ddbsync doctor``: probe an OpenSearch endpoint for every feature ddbsync relies on.

* :mod:`~ddbsync.doctor.features`: the catalogue (what is probed, where ddbsync uses it,
  what is lost without it) and the mode the findings allow;
* :mod:`~ddbsync.doctor.probes`: the probes, in a scratch index that is always deleted.
"""

from ddbsync.doctor.features import FEATURES, Feature, Finding, Mode, mode_of
from ddbsync.doctor.probes import Checkup, run_checkup, scratch_index_name

__all__ = [
    "FEATURES",
    "Checkup",
    "Feature",
    "Finding",
    "Mode",
    "mode_of",
    "run_checkup",
    "scratch_index_name",
]
