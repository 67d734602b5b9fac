"""Node-classification datasets for gnnmask.

:data:`DATASETS` is the registry (canonical lower-case name ->
:class:`DatasetInfo`): the PyG class and folder that read each dataset, its
expected raw files, node/edge/feature/class counts and split kind.
:func:`load_dataset` returns one :class:`torch_geometric.data.Data` with
``x``, undirected ``edge_index``, ``y``, ``train_mask``/``val_mask``/``test_mask``,
``name`` and ``num_classes``; :func:`evaluate_accuracy` scores predictions on a
mask; :func:`list_datasets` reports which datasets a root holds.

Raw files live under the data root (:func:`resolve_root`: argument >
``GNNMASK_DATA`` > ``./datasets``), which is only ever read. PyG's processed
files go to a writable cache (``GNNMASK_CACHE`` > ``$XDG_CACHE_HOME/gnnmask`` >
``~/.cache/gnnmask``) that mirrors the raw files by symlink, keyed by the data
root's absolute path; see :mod:`gnnmask.data.registry`. Nothing is downloaded.
The ``csbm`` dataset (:mod:`gnnmask.data.csbm`) is generated in-process.
"""

from gnnmask.data.csbm import CSBM_DEFAULTS, generate_csbm
from gnnmask.data.loading import dataset_of, evaluate_accuracy, load_dataset, random_split
from gnnmask.data.registry import (
    DATASETS,
    DatasetInfo,
    cache_home,
    check_root,
    get_info,
    list_datasets,
    resolve_root,
)

__all__ = [
    "CSBM_DEFAULTS",
    "DATASETS",
    "DatasetInfo",
    "cache_home",
    "check_root",
    "dataset_of",
    "evaluate_accuracy",
    "generate_csbm",
    "get_info",
    "list_datasets",
    "load_dataset",
    "random_split",
    "resolve_root",
]
