"""Refusing to start worker processes from a script's unguarded top level (Python's "safe importing of main module")."""

from __future__ import annotations

import ast
import sys
from pathlib import Path


class UnguardedMainError(RuntimeError):
    """Worker processes asked for from the top level of a script that lacks the ``__main__`` guard."""


#: The guard that keeps spawned worker processes from re-running a script.
MAIN_GUARD = 'if __name__ == "__main__":'


def check_main_guard() -> None:
    """Refuse to start worker processes from the unguarded top level of the main script.

    Worker processes are started with ``spawn``: each one imports the main script again (as
    ``__mp_main__``), which re-runs everything its top level does outside ``if __name__ ==
    "__main__":`` and ends in an obscure error from ``multiprocessing`` (Python's
    "Safe importing of main module" rule). So, before any process starts, this looks for the
    main script's module-level code among the callers; when it is there and its current line is
    not inside that guard, it raises :class:`UnguardedMainError` showing the guard. In a worker
    that is importing an unguarded script, the same call raises at once. Interactive sessions,
    ``python -c`` and calls from functions run outside the script's top level pass.

    Raises:
        UnguardedMainError: when called from a script's top level outside the guard.
    """
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if frame.f_code.co_name == "<module>" and name in ("__main__", "__mp_main__"):
            break
        frame = frame.f_back
    if frame is None:
        return
    if name == "__main__" and _inside_main_guard(frame.f_code.co_filename, frame.f_lineno):
        return
    raise UnguardedMainError(
        "n_envs > 1 starts worker processes, which re-run the top level of your script: put the code "
        f'that builds and trains the model under `{MAIN_GUARD}` (e.g. `{MAIN_GUARD} main()`), or pass vectorization="sync"'
    )


def _inside_main_guard(path: str, line: int | None) -> bool:
    """Whether ``line`` of the script ``path`` is inside an ``if __name__ == "__main__":`` block.

    True also when the script's source cannot be read or parsed (nothing to check it against).
    """
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except (OSError, SyntaxError, ValueError):
        return True
    if line is None:
        return True
    return any(
        isinstance(node, ast.If)
        and _is_main_test(node.test)
        and node.lineno <= line <= (node.end_lineno or 0)
        for node in ast.walk(tree)
    )


def _is_main_test(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    for name, value in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
        if isinstance(name, ast.Name) and name.id == "__name__":
            return isinstance(value, ast.Constant) and value.value == "__main__"
    return False


__all__ = ["MAIN_GUARD", "UnguardedMainError", "check_main_guard"]
