"""``python -m audiomnist_edge`` and the ``audiomnist-edge`` command."""

import sys


def run() -> None:
    """Load the command line and run it; Ctrl-C while it is still loading exits 130 quietly too."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
