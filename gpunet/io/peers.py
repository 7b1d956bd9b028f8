"""The other programs gpunet talks to, each failure an answer rather than an OSError: git (for a run's manifest)
and a Dask scheduler (for a distributed sweep)."""

from __future__ import annotations

import os
import subprocess

from ..errors import ConfigError, one_line


def git(cwd, *args: str) -> str | None:
    """What ``git ARGS`` prints in ``cwd``, stripped; None when git is missing, fails or takes over 10 s.
    No GIT_* variable of the caller's (a GIT_DIR from elsewhere) reaches it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        run = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def dask_client(address: str, timeout: float):
    """A client of the Dask scheduler at ``address``, within ``timeout``; else ConfigError, one line saying why.

    The client's own timeout bounds the TCP connection only: a peer that accepts and never speaks (or an
    HTTP server) would hold the handshake forever. So the address is first asked who it is, the whole
    exchange bounded; only a Dask scheduler that answers gets a client."""
    from distributed import Client
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "inproc":  # in this process: nothing foreign can be listening there
            parse_host_port(location)  # a port is required: checked here, not by a client that hangs on it
            _identify(address, timeout)
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        why = f"no Dask scheduler answered there within {timeout:g} s" if isinstance(e, TimeoutError) else one_line(e)
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r} ({why}); start one with `dask scheduler` "
            "and give its address, e.g. tcp://host:8786"
        ) from None


def _identify(address: str, timeout: float) -> None:
    """None once the peer at ``address`` has answered as a Dask scheduler within ``timeout``; else TimeoutError
    (no answer) or ValueError (an answer, but not a scheduler's)."""
    import asyncio

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded():
        return await asyncio.wait_for(identity(), timeout)

    try:
        answer = asyncio.run(bounded())
    except (OSError, asyncio.TimeoutError) as e:  # a refused connection is retried until the timeout too
        raise TimeoutError() from e
    except Exception as e:  # noqa: BLE001 - whatever a foreign peer's bytes make of the protocol
        raise ValueError(f"not a Dask scheduler ({one_line(e)})") from None
    if not (isinstance(answer, dict) and answer.get("type") == "Scheduler"):
        raise ValueError("not a Dask scheduler (it answered, but not as one)")
