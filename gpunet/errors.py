"""Errors a user can cause and fix: the CLI prints them as one line and exits 2."""


class GpunetError(Exception):
    """Base class of gpunet's user-facing errors."""


class ConfigError(GpunetError, ValueError):
    """An invalid setting (sizes, eta, batch size, dtype, ...)."""
