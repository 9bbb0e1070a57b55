"""The Qt workstation (the only package that imports PySide6).

Importing it first applies ``_pyside_fix.immortalise_singletons`` (a PySide6 6.12 + Python 3.11
reference-count bug, see that module), so every GUI module and test is protected.
"""

from faceapp.gui._pyside_fix import immortalise_singletons

immortalise_singletons()
