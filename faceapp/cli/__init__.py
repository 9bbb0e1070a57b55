"""The ``faceapp`` command line: one module per command group in ``faceapp.cli.commands``."""
