"""Learning tasks: what the engine's one loop predicts (``--task``).

``node`` (node classification), ``link`` (link prediction) and ``graph``
(graph classification), each a :class:`Task` registered in :data:`TASKS`:
it loads and splits the data, adds its head, computes the loss and the
metrics. See :mod:`gnnmask.tasks.base`.
"""

from gnnmask.tasks.base import (
    TASK_FIELDS,
    TASKS,
    Objective,
    Task,
    check_task_fields,
    get_task_class,
    register_task,
)

# Registration order is the order `--task` lists them in.
# isort: off
from gnnmask.tasks.node import NodeTask
from gnnmask.tasks.link import DECODERS, LINK_LOSSES, LinkMLP, LinkTask
from gnnmask.tasks.graph import READOUTS, GraphTask
# isort: on

__all__ = [
    "DECODERS", "LINK_LOSSES", "READOUTS", "TASKS", "TASK_FIELDS", "GraphTask", "LinkMLP",
    "LinkTask", "NodeTask", "Objective", "Task", "check_task_fields", "get_task_class",
    "register_task",
]
