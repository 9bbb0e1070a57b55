"""Entry point of the ``faceapp`` command: builds the parser from the command modules and maps
errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from faceapp import __version__
from faceapp.core.errors import ExitCode, FaceAppError
from faceapp.core.registry import import_submodules

EPILOG = "exit codes:\n" + "\n".join(
    f"  {code.value:>3}  {code.name.lower().replace('_', ' ')}" for code in ExitCode
) + "\n\nenvironment: FACEAPP_MODEL_DIR (MediaPipe models), FACEAPP_DB (database URL), " \
    "FACEAPP_DATA_DIR, FACEAPP_CACHE_DIR, FACEAPP_EMBED_MODEL (embedding model folder)."


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every command module's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="faceapp",
        description="FaceApp: face detection, alignment, embedding, verification, identification and training.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceapp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in import_submodules("faceapp.cli.commands"):
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (see ``ExitCode``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)     # e.g. re-run by torchrun (train --nproc)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return int(ExitCode.USAGE)
    try:
        return int(handler(args) or 0)
    except FaceAppError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return int(ExitCode.CANCELLED)


if __name__ == "__main__":
    sys.exit(main())
