"""Command modules. Each defines ``register(subparsers)`` which adds its sub-commands and sets
``handler`` (a function ``(args) -> int``) with ``parser.set_defaults(handler=...)``. They are
discovered automatically, in module-name order."""
