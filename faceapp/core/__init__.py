"""Base layer: typed records, registries, errors, paths and progress events. Imports only stdlib and numpy."""
