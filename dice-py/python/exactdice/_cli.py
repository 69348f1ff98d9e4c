"""The ``dice`` command installed by the wheel (``[project.scripts]``): ``dice eval PRED GT``,
the same Rust code as the ``dice`` binary of dice-cli, run through the extension module."""

import sys

from . import _native


def main() -> None:
    """Runs ``dice`` with this process's arguments and exits with its status."""
    sys.stdout.flush()
    sys.exit(_native.cli_main(["dice"] + sys.argv[1:]))


if __name__ == "__main__":
    main()
