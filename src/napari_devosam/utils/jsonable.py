"""Plain JSON types from the numpy values that prompts and metadata carry."""

from __future__ import annotations

import numpy as np


def jsonable(value):
    """``value`` with dict keys as strings and numpy arrays/scalars as lists/numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
