"""Reading small YAML settings files (train configs, sweep grids) that may come from someone else.

``yaml.safe_load`` builds no Python objects beyond plain data, but YAML aliases let a few hundred
bytes stand for billions of values (the "billion laughs" file), which then explode when the
settings are written to JSON or iterated, and PyYAML builds nested values recursively, so a few
kilobytes of ``[[[[...`` exhaust Python's recursion limit. ``load_settings`` caps the file size,
the nesting depth and the number of values after aliases are expanded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: Largest settings file read; a train config or sweep grid is a few hundred bytes.
MAX_SETTINGS_BYTES = 2**20
#: Most values (mapping entries and list items, nested, aliases expanded) a settings file may hold.
MAX_SETTINGS_VALUES = 10_000


def load_settings(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping in the YAML (or JSON) file ``path``, as plain data.

    Args:
        path: the settings file.
        what: what the mapping holds, for the error message (``"train options"``).

    Raises:
        ValueError: the file is missing, over ``MAX_SETTINGS_BYTES``, not valid YAML, nested too
            deeply for the parser, holds more than ``MAX_SETTINGS_VALUES`` values once its aliases
            are expanded, or is not a mapping; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no file at {path}")
    if path.stat().st_size > MAX_SETTINGS_BYTES:
        raise ValueError(f"{path} is over {MAX_SETTINGS_BYTES:,} bytes; a settings file is much smaller")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid YAML or JSON ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a settings file") from None
    count, stack = 0, [data]
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_SETTINGS_VALUES:
            raise ValueError(f"{path} holds over {MAX_SETTINGS_VALUES:,} values (YAML aliases expanded)")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of {what}, got {type(data).__name__}")
    return data
