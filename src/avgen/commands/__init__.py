"""Implementations of the `avgen` subcommands that are not part of a larger module."""
