"""Start the FaceApp workstation: ``python main.py``."""

from faceapp.gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
