"""JAX's persistent compilation cache, on by default for jaxnets' commands and scripts.

A jaxnets process spends most of its time to result compiling: a training program, an
initialisation program, the evaluation. The compiled executables do not change between runs of
the same experiment (the seed, learning rate and data are arguments, not constants), so the
experiment scripts, ``jaxnets train`` and ``python -m parity`` keep them in a per-user directory
and a second run loads them instead of compiling.

The directory is, first found:

* ``$JAXNETS_CACHE_DIR``;
* the directory JAX itself was given (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.jax_compilation_cache_dir``);
* ``$XDG_CACHE_HOME/jaxnets/compilation`` (``~/.cache/jaxnets/compilation`` without it).

``--no-cache`` on each command, or ``JAXNETS_NO_CACHE=1`` in the environment, turns it off. The
cache must be switched on before the process compiles anything: JAX decides once, at its first
compilation, whether the cache is used.

Only the entry points call :func:`enable`; importing jaxnets changes no JAX setting.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_DIR",
    "ENV_OFF",
    "CacheStats",
    "default_dir",
    "describe",
    "disabled_by_env",
    "enable",
    "stats",
]

ENV_DIR = "JAXNETS_CACHE_DIR"
ENV_OFF = "JAXNETS_NO_CACHE"

_REQUESTS = "/jax/compilation_cache/compile_requests_use_cache"
_HITS = "/jax/compilation_cache/cache_hits"
_SAVED = "/jax/compilation_cache/compile_time_saved_sec"


@dataclass
class CacheStats:
    """What the cache did in this process.

    Attributes:
      enabled: whether :func:`enable` switched it on.
      directory: the cache directory, or ``None`` when off.
      requests: compilations that consulted the cache.
      hits: of those, the ones loaded from it.
      seconds_saved: compile time the hits saved, as recorded when they were compiled (minus
        the time the loads took).
    """

    enabled: bool = False
    directory: str | None = None
    requests: int = 0
    hits: int = 0
    seconds_saved: float = 0.0

    @property
    def misses(self) -> int:
        """Compilations that consulted the cache and compiled (and wrote) their program."""
        return self.requests - self.hits

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, ``misses`` included.

        >>> CacheStats(True, "/tmp/c", requests=3, hits=2).as_dict()["misses"]
        1
        """
        return {
            **asdict(self),
            "misses": self.misses,
            "seconds_saved": round(self.seconds_saved, 3),
        }


_stats = CacheStats()
_lock = threading.Lock()
_listening = False


def disabled_by_env(environ: dict[str, str] | None = None) -> bool:
    """Whether ``JAXNETS_NO_CACHE`` asks for no cache (set, and not ``""``, ``0`` or ``false``).

    >>> disabled_by_env({"JAXNETS_NO_CACHE": "1"}), disabled_by_env({"JAXNETS_NO_CACHE": "0"})
    (True, False)
    >>> disabled_by_env({})
    False
    """
    value = (os.environ if environ is None else environ).get(ENV_OFF, "")
    return value.strip().lower() not in ("", "0", "false", "no")


def default_dir(environ: dict[str, str] | None = None) -> Path:
    """The per-user cache directory, before JAX's own setting is consulted.

    >>> default_dir({"JAXNETS_CACHE_DIR": "/tmp/c"}).as_posix()
    '/tmp/c'
    >>> default_dir({"XDG_CACHE_HOME": "/tmp/x"}).as_posix()
    '/tmp/x/jaxnets/compilation'
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_DIR):
        return Path(env[ENV_DIR]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "jaxnets" / "compilation"


def enable(no_cache: bool = False) -> CacheStats:
    """Switch the persistent compilation cache on for this process, unless asked not to.

    Every program is cached, however quickly it compiled: a script compiles several small
    programs, and together they are most of its start-up. A directory that cannot be created
    leaves the cache off with a one-line warning rather than failing the run.

    Args:
      no_cache: the command's ``--no-cache``; ``JAXNETS_NO_CACHE`` is read as well.

    Returns:
      The live :class:`CacheStats` of this process (read it after the run, or call :func:`stats`).
    """
    import jax

    if no_cache or disabled_by_env():
        return _stats
    configured = jax.config.jax_compilation_cache_dir
    directory = default_dir() if os.environ.get(ENV_DIR) or not configured else Path(configured)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        import warnings

        warnings.warn(f"compilation cache off: cannot create {directory}: {err}", stacklevel=2)
        return _stats
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _listen()
    _stats.enabled = True
    _stats.directory = str(directory)
    return _stats


def describe(cache: CacheStats) -> str:
    """One line for a command's summary.

    >>> describe(CacheStats(True, "/tmp/c", requests=4, hits=3))
    'compilation cache /tmp/c: 3 of 4 programs loaded, 1 compiled'
    >>> describe(CacheStats())
    'compilation cache off'
    """
    if not cache.enabled:
        return "compilation cache off"
    return (
        f"compilation cache {cache.directory}: {cache.hits} of {cache.requests} programs loaded, "
        f"{cache.misses} compiled"
    )


def stats() -> CacheStats:
    """This process's :class:`CacheStats` (all zero and ``enabled=False`` before :func:`enable`)."""
    return _stats


def _listen() -> None:
    global _listening
    from jax import monitoring

    with _lock:
        if _listening:
            return
        _listening = True

    def on_event(event: str, **_: Any) -> None:
        if event == _REQUESTS:
            _stats.requests += 1
        elif event == _HITS:
            _stats.hits += 1

    def on_duration(event: str, seconds: float, **_: Any) -> None:
        if event == _SAVED:
            _stats.seconds_saved += seconds

    monitoring.register_event_listener(on_event)
    monitoring.register_event_duration_secs_listener(on_duration)
