"""``python -m marl_lsf.cli``: the ``marl-lsf`` command."""

import sys

from marl_lsf.cli import main

if __name__ == "__main__":
    sys.exit(main())
