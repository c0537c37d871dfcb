"""The ``audiomnist-edge`` command group.

Commands live in their own modules and are imported only when invoked, so
``audiomnist-edge --help`` and the light commands never pay for heavy imports.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from . import __version__
from .errors import EdgeError

# name -> (module, attribute, one-line help shown in --help without importing)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "bench": (
        "audiomnist_edge.bench",
        "bench",
        "Time each stage, cold start and memory on this device; compare with the reference.",
    ),
    "features": ("audiomnist_edge.features_cmd", "features", "Print the MFCC feature matrix of WAV files."),
    "convert": (
        "audiomnist_edge.convert.commands",
        "convert",
        "Quantize a training run to a verified, self-describing .tflite model.",
    ),
    "predict": ("audiomnist_edge.predict", "predict", "Recognise the digit spoken in WAV files (or folders of them)."),
    "info": ("audiomnist_edge.info", "info", "Show a model's backend, metadata, features, size and checksum."),
    "train": ("audiomnist_edge.train.commands", "train", "Train a model on a corpus folder and write a run folder."),
    "evaluate": (
        "audiomnist_edge.train.commands",
        "evaluate",
        "Re-score a trained model; --folds for speaker-independent folds.",
    ),
    "eda": (
        "audiomnist_edge.train.commands",
        "eda",
        "Exploratory plots of a corpus (waveforms, MFCCs, balance, durations).",
    ),
    "flash": (
        "audiomnist_edge.flash_cmd",
        "flash",
        "Install a model on devices (local dirs or ssh://), atomically; --rollback.",
    ),
    "listen": ("audiomnist_edge.listen", "listen", "Recognise digits live from a microphone, a WAV file or stdin PCM."),
    "service": ("audiomnist_edge.service", "service", "Write (or print) a systemd unit that runs listen at boot."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audiomnist-edge")
@click.option("--debug", is_flag=True, help="Log what happens, with timings, to stderr.")
def cli(debug: bool) -> None:
    """Recognise spoken digits (0-9) on small devices.

    \b
    On the device, with the packaged model:
      audiomnist-edge predict clip.wav          # the digit(s) spoken in a file
      audiomnist-edge listen                    # digits from the default microphone
      audiomnist-edge listen --input pin.wav --sequence   # numbers, as listen hears them
      audiomnist-edge bench                     # speed and memory on this device
    Making a model (the train extra: pip install 'audiomnist-edge[train]'):
      audiomnist-edge train --data CORPUS --out runs/mine   # a Keras run folder
      audiomnist-edge convert runs/mine                     # verified int8 .tflite
      audiomnist-edge evaluate runs/mine --conditions       # under capture conditions
      audiomnist-edge flash runs/mine/model-int8.tflite ssh://pi@raspberrypi/opt/audiomnist-edge
    Run any command with --help for its options and examples.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s" if debug else "%(levelname)s: %(message)s",
        stream=sys.stderr,
    )


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EdgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except BrokenPipeError:
        sys.exit(1)
