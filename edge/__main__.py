"""``python -m audiomnist_edge``: the same as the ``audiomnist-edge`` command."""

from .cli import main

main()
