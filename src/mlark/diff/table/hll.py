"""HyperLogLog distinct counts over the 64-bit value hashes (2**14 registers: about 0.8% standard
error), with the usual linear-counting correction for small counts."""

from __future__ import annotations

import math
from typing import Any

from mlark.diff.deps import require

P = 14
M = 1 << P


def _rank_table() -> Any:
    np = require("numpy", purpose="diffing tables")
    table = np.full(1024 + 32, 33, dtype=np.uint8)  # exponent 0 (w == 0): 32 zeros, rank 33
    for e in range(32):
        table[1023 + e] = 32 - e
    return table


_RANK: Any = None


class HyperLogLog:
    def __init__(self) -> None:
        global _RANK
        np = require("numpy", purpose="diffing tables")
        self.registers = np.zeros(M, dtype=np.uint8)
        if _RANK is None:
            _RANK = _rank_table()

    def update(self, hashes: Any) -> None:
        """Add uint64 hashes (nulls already removed)."""
        np = require("numpy", purpose="diffing tables")
        if hashes.size == 0:
            return
        floor = int(self.registers.min())
        if floor >= 1:
            # only a rank above the lowest register can change anything: rank > floor means the
            # low 32 bits are below 2**(32 - floor)
            hashes = hashes[hashes.astype(np.uint32) < np.uint32(1 << (32 - min(floor, 32)))] if floor < 32 else \
                hashes[hashes.astype(np.uint32) == 0]
            if hashes.size == 0:
                return
        idx = (hashes >> np.uint64(64 - P)).astype(np.intp)
        # the low 32 bits as a float64 (exact): its biased exponent is 1023 + floor(log2(w)), 0 for w == 0
        w = hashes.astype(np.uint32).astype(np.float64)
        rank = _RANK[w.view(np.uint64) >> np.uint64(52)]  # leading zeros of the 32 bits + 1
        regs = self.registers
        better = rank > regs[idx]
        if better.any():
            np.maximum.at(regs, idx[better], rank[better])

    def merge(self, other: HyperLogLog) -> None:
        np = require("numpy", purpose="diffing tables")
        np.maximum(self.registers, other.registers, out=self.registers)

    def estimate(self) -> int:
        np = require("numpy", purpose="diffing tables")
        regs = self.registers.astype(np.float64)
        alpha = 0.7213 / (1 + 1.079 / M)
        raw = alpha * M * M / float(np.sum(np.exp2(-regs)))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * M and zeros:
            return int(round(M * math.log(M / zeros)))
        return int(round(raw))
