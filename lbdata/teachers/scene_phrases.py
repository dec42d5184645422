"""The scene teacher's phrase bank: ``prompts/scene/*.yaml``, one file per figure family plus ``shared``.

Each file maps a slot (``open``, ``bar.read``, ``geo.goal.leg`` …) to its phrasings, ``str.format``
templates. ``phrases()`` loads and checks every file once; ``Words`` picks a phrasing per use by the
request seed. Any edit to a file changes ``phrase_bank_hash`` in ``lbdata.teachers.scene`` and so every
scene trace id.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from lbdata.errors import ConfigError, LbdataError
from lbdata.resources import read_yaml_mapping, resource_dir

FOLDER = "scene"  # under prompts/


def load_phrases(folder: Path) -> dict[str, list[str]]:
    """Every slot of every ``*.yaml`` in ``folder``; a bad file is a ``ConfigError`` naming it and the fix."""
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(
            f"no phrase files (*.yaml) in {folder}; reinstall lbdata or restore prompts/{FOLDER}/"
        )
    bank: dict[str, list[str]] = {}
    for path in files:
        hint = "slot: [phrasing, ...], e.g. open: [Let me work through this step by step.]"
        data = read_yaml_mapping(path, what="phrase file", hint=hint)
        for key, options in data.items():
            if (
                not isinstance(key, str)
                or not isinstance(options, list)
                or not options
                or not all(isinstance(o, str) for o in options)
            ):
                raise ConfigError(
                    f"phrase file {path}: slot {key!r} must be a non-empty list of strings; {hint}"
                )
            if key in bank:
                raise ConfigError(
                    f"phrase file {path}: slot {key!r} is also defined in another file of {folder}; keep one"
                )
            bank[key] = options
    return bank


@lru_cache(maxsize=1)
def phrases() -> dict[str, list[str]]:
    """The installed phrase bank (``prompts/scene/``), loaded once per process."""
    try:
        folder = resource_dir("prompts") / FOLDER
    except LbdataError as exc:
        raise ConfigError(str(exc)) from None
    return load_phrases(folder)


class Words(random.Random):
    """The seeded chooser of phrasings: within one trace a phrasing is not reused until its slot runs out."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self._used: dict[str, set[int]] = {}

    def pick(self, key: str, **fields: Any) -> str:
        bank = phrases()
        if key not in bank:
            raise ConfigError(f"the phrase slot {key!r} is missing from prompts/{FOLDER}/*.yaml; add it")
        options = bank[key]
        used = self._used.setdefault(key, set())
        if len(used) >= len(options):
            used.clear()
        i = self.choice([j for j in range(len(options)) if j not in used])
        used.add(i)
        return options[i].format(**fields)
