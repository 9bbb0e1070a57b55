"""``python -m faceapp`` runs the command line."""

from faceapp.cli.main import main

raise SystemExit(main())
