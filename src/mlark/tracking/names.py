"""Run names made up when none is given: ``adjective-noun-NN`` (``brisk-otter-42``). Random, not unique."""

from __future__ import annotations

import random

ADJECTIVES = (
    "amber", "bold", "brave", "bright", "brisk", "calm", "clever", "cosmic", "crisp", "curious", "daring", "deep",
    "eager", "fancy", "fast", "fierce", "gentle", "golden", "grand", "happy", "hidden", "humble", "jolly", "keen",
    "kind", "lively", "lucky", "merry", "mighty", "misty", "noble", "polar", "proud", "quick", "quiet", "rapid",
    "rare", "silent", "silver", "smooth", "snowy", "solar", "steady", "sunny", "swift", "tidy", "vivid", "warm",
    "wild", "wise",
)  # fmt: skip
NOUNS = (
    "badger", "bear", "beaver", "bison", "cedar", "comet", "crane", "delta", "dune", "eagle", "falcon", "fern",
    "finch", "fjord", "fox", "glacier", "hawk", "heron", "ibis", "koala", "lark", "lynx", "maple", "meadow", "moon",
    "moose", "nebula", "oak", "orca", "otter", "owl", "panda", "pine", "planet", "quasar", "raven", "reef", "river",
    "salmon", "seal", "sparrow", "spruce", "star", "stream", "tiger", "tundra", "valley", "walrus", "willow", "wolf",
)  # fmt: skip

_rng = random.SystemRandom()  # not affected by seed_everything


def generate_name() -> str:
    return f"{_rng.choice(ADJECTIVES)}-{_rng.choice(NOUNS)}-{_rng.randrange(100):02d}"
