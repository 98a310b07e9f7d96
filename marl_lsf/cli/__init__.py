"""The ``marl-lsf`` command: train, evaluate, replay and plot cooperative multi-agent agents.

Every subcommand is a thin layer over the library: ``train`` builds an algorithm on a named env
(``marl_lsf.env_registry``) and calls ``learn`` with ``marl_lsf.callbacks.EvalCallback``,
``marl_lsf.checkpoint.CheckpointCallback`` and a logger from ``marl_lsf.checkpoint.configure_logger``
(so ``train --resume`` continues a run's checkpoints and logs); ``eval`` runs
``marl_lsf.evaluate_policy``; ``replay`` uses ``marl_lsf.replay``; ``plot`` uses
``marl_lsf.plotting``; ``sweep`` forwards to ``marl_lsf.sweep``. A run folder written by ``train``
holds ``run.json`` (the command's settings), so ``eval``, ``replay`` and ``train --resume``
rebuild the env from it.

A run folder is untrusted input (it may come from a shared disk or a collaborator's archive):
its ``run.json`` is read as data and never names code to run. It may name only registered
environments (``marl_lsf.env_registry.is_registered``) and algorithms (``ALGORITHMS``); a
``module:factory`` env in it is refused unless the user names the same env with ``--env`` or
passes ``--trust-run-config``. See SECURITY.md.

Bad input (unknown names, missing files, malformed JSON, a model used on the wrong env) ends with
a one-line error and exit status 2.

Layout: ``command`` (the parser and ``main``), one module per subcommand (``train``,
``evaluate``, ``replay``, ``plot``, ``sweep``), ``common`` (errors, consoles, models and run
folders) and ``options`` (the ``argparse`` options the subcommands share).
"""

from marl_lsf.cli.command import EXAMPLES, build_parser, main
from marl_lsf.cli.common import (
    EXIT_USAGE,
    RUN_SETTINGS,
    CliError,
    console,
    env_factory_for,
    err_console,
    find_run_settings,
    load_model,
    parse_kwargs,
    read_run_settings,
    resolve_algorithm,
    run_env,
)
from marl_lsf.cli.evaluate import cmd_eval
from marl_lsf.cli.plot import cmd_plot
from marl_lsf.cli.replay import cmd_replay
from marl_lsf.cli.sweep import cmd_sweep
from marl_lsf.cli.train import (
    KEEP_CHECKPOINTS,
    RESUME_FIXED,
    RESUME_OVERRIDES,
    RUN_OUTPUTS,
    TRAIN_DEFAULTS,
    cmd_train,
)

__all__ = [
    "EXAMPLES",
    "EXIT_USAGE",
    "KEEP_CHECKPOINTS",
    "RESUME_FIXED",
    "RESUME_OVERRIDES",
    "RUN_OUTPUTS",
    "RUN_SETTINGS",
    "TRAIN_DEFAULTS",
    "CliError",
    "build_parser",
    "cmd_eval",
    "cmd_plot",
    "cmd_replay",
    "cmd_sweep",
    "cmd_train",
    "console",
    "env_factory_for",
    "err_console",
    "find_run_settings",
    "load_model",
    "main",
    "parse_kwargs",
    "read_run_settings",
    "resolve_algorithm",
    "run_env",
]
