"""The one error hierarchy of renewlm.

Every message says what is wrong, where, and how to fix it, in one sentence. Only the CLI turns
these into an exit code (2); library callers catch `RenewError`.
"""


class RenewError(Exception):
    """Base of every error renewlm raises on purpose."""


class InputError(RenewError):
    """A path, file or record given by the user cannot be used."""


class ConfigError(RenewError):
    """A YAML config or a command-line value is invalid."""


class StoreError(RenewError):
    """The store lacks something asked for, or already has it."""


class CorruptError(RenewError):
    """Something in the store is truncated or altered."""


class TrainingError(RenewError):
    """A run cannot continue (repeated non-finite losses, an incompatible checkpoint)."""
