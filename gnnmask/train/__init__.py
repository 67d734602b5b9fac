"""The training engine (one loop for every method), run configs and records."""

from gnnmask.train.config import RunConfig, resolve_config
from gnnmask.train.device import resolve_device
from gnnmask.train.engine import build, count_parameters, seed_everything, train
from gnnmask.train.records import read_json, versions, write_json_atomic

__all__ = [
    "RunConfig", "build", "count_parameters", "read_json", "resolve_config", "resolve_device",
    "seed_everything", "train", "versions", "write_json_atomic",
]
