"""``seed_everything(n)``: seed Python's ``random``, NumPy and PyTorch (when installed) and say which were seeded."""

from __future__ import annotations

import importlib.util
import random
from typing import Any

from mlark.errors import InvalidInput


def seed_everything(seed: Any) -> dict[str, int]:
    """Seed every random number generator found; returns ``{"random": n, "numpy": n, "torch": n}`` for those seeded.

    NumPy's legacy global generator takes seeds below 2**32, so it gets ``seed % 2**32``
    (recorded as such). ``torch.cuda`` is seeded too when CUDA is available.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"a seed is a whole number >= 0, got {seed!r:.40}", field="seed")
    seeds: dict[str, int] = {}
    random.seed(seed)
    seeds["random"] = seed
    if importlib.util.find_spec("numpy") is not None:
        import numpy as np

        np.random.seed(seed % 2**32)
        seeds["numpy"] = seed % 2**32
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch
        except Exception:  # a broken torch install must not break seeding the rest
            torch = None
        if torch is not None:
            torch.manual_seed(seed)
            seeds["torch"] = seed
            try:
                if torch.cuda.is_available():
                    torch.cuda.manual_seed_all(seed)
                    seeds["torch.cuda"] = seed
            except Exception:
                pass
    return seeds
