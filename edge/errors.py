"""Errors the command line turns into one-line messages and a non-zero exit."""


class EdgeError(Exception):
    """Base class: anything a user can fix (bad input, missing extra, bad model)."""


class MissingExtraError(EdgeError):
    """A command needs packages from an extra that is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this command needs the [{extra}] extra ({module} is missing): pip install 'audiomnist-edge[{extra}]'"
        )


def require_extra(extra: str, *modules: str) -> None:
    """Raise MissingExtraError unless every module can be imported."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(extra, module)
