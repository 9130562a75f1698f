"""Mixing (issue 31): several streams interleaved by weight, as one source of a Pipeline.

``schedlab.mix(...)`` gives a source that ``schedlab.Pipeline`` reads like any stream: pulled
lazily, its state (each source's position, the credits, the random draws, the step) in
``state_dict()``, resumed item for item by ``load_state_dict()``. See docs/streams.md.
"""

import math
import numbers

from . import _core
from .dataloader import _MAX_SEED, _int_arg
from .streams import Shards

_MODES = ("interleave", "random")
_STOPS = ("first_exhausted", "all_exhausted", "never")


def _check_weights(weights, n, field="weights"):
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise TypeError(f"{field}: expected a list of numbers or a callable step -> weights, "
                        f"got {type(weights).__name__}")
    if len(weights) != n:
        raise ValueError(f"{field}: expected {n} weights (one per source), got {len(weights)}")
    out = []
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            raise TypeError(f"{field}[{i}]: expected a number, got {type(w).__name__}")
        w = float(w)
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"{field}[{i}]: must be a finite number >= 0, got {w}")
        out.append(w)
    if not any(out):
        raise ValueError(
            f"{field}: at least one weight must be > 0 (0 pauses a source), got all zero")
    return out


class Mix:
    """A weighted mix of streams; made by :func:`mix`, given to ``schedlab.Pipeline``."""

    def __init__(self, sources, weights, schedule, seed, mode, stop, names):
        self.sources, self.weights, self.schedule = sources, weights, schedule
        self.seed, self.mode, self.stop, self.names = seed, mode, stop, names
        self._stats = _core.MixStatsHandle()

    def __repr__(self):
        w = self.weights if self.schedule is None else getattr(
            self.schedule, "__qualname__", "schedule")
        return (f"schedlab.mix({len(self.sources)} sources, weights={w}, seed={self.seed}, "
                f"mode={self.mode!r}, stop={self.stop!r})")

    def _spec_of_stream(self, shuffle_buffer):
        """The tuple the Rust core reads (python/src/mix.rs)."""
        schedule = None
        if self.schedule is not None:
            user, n = self.schedule, len(self.sources)

            def schedule(step):
                return _check_weights(list(user(step)), n, f"weights(step={step})")
            schedule.__qualname__ = getattr(user, "__qualname__", "schedule")
        return (
            "mix", [_child_spec(s) for s in self.sources], self.weights, schedule, self.seed,
            self.mode, self.stop, self.names, self._stats, shuffle_buffer,
        )

    def stats(self):
        """Per-source figures of the mix the last pipeline built from it, since its epoch
        started (or it was restored): ``{"items", "holding_back", "sources": [{"name",
        "taken", "share", "target_share", "read_seconds", "read_rate"}, ...]}``; ``None``
        before a pipeline read it. Counts are of items read by the pipeline (at most its
        window ahead of the consumer). ``holding_back`` names the source with the most read
        time per item of the mix."""
        return self._stats.snapshot()

    def report(self):
        """:meth:`stats` as a table (``None`` before a pipeline read the mix)."""
        return self._stats.text()


def _child_spec(source):
    if isinstance(source, (Mix, Shards)):
        return source._spec_of_stream(None) if isinstance(source, Mix) else source._spec(None)
    if callable(source):
        return ("iter", source, True, None)
    if isinstance(source, (int, str, bytes)) or not hasattr(source, "__iter__"):
        raise TypeError(
            "sources: expected iterables, callables epoch -> iterable, sequences, "
            f"schedlab.shards(...) or schedlab.mix(...), got {type(source).__name__}")
    return ("iter", source, False, None)


def mix(sources, weights, *, seed=0, mode="interleave", stop="first_exhausted", names=None):
    """Interleave ``sources`` by ``weights``: a source for ``schedlab.Pipeline``.

    ``sources``: streams (any iterable, iterated anew each epoch; a callable
    ``epoch -> iterable``; a sequence; ``schedlab.shards(...)``; another ``mix``).
    ``weights``: one number >= 0 per source (any scale), or a callable ``step -> weights``
    (``step`` counts the items given in the epoch: a curriculum). A weight of 0 pauses its
    source; it is read again where it stood when its weight comes back.

    ``mode="interleave"``: deterministic; every prefix of ``n`` items holds ``floor(n·p)`` or
    ``ceil(n·p)`` items of a source of share ``p`` (fixed weights), so any window of ``N``
    items is less than 2 off ``N·p``; where the shares are whole numbers of a period of at
    most 64 items and an order exists whose every window is within 1 of ``N·p``, that order
    is found and repeated. ``mode="random"``: seeded draws (reproducible for a
    seed and an epoch).

    ``stop``: ``"first_exhausted"`` ends the epoch at the first source that runs out;
    ``"all_exhausted"`` goes on with the others renormalised until all ran out;
    ``"never"`` restarts a source that runs out at its next epoch (an endless mix).
    ``names`` name the sources in :meth:`Mix.stats`.
    """
    if isinstance(sources, (str, bytes)) or not hasattr(sources, "__len__"):
        raise TypeError(f"sources: expected a list of sources, got {type(sources).__name__}")
    sources = list(sources)
    if not sources:
        raise ValueError("sources: expected at least one source, got none")
    for s in sources:
        _child_spec(s)
    if callable(weights):
        schedule, weights = weights, None
    else:
        schedule, weights = None, _check_weights(weights, len(sources))
    _int_arg("seed", seed, 0, _MAX_SEED)
    if mode not in _MODES:
        raise ValueError(f'mode: expected "interleave" or "random", got {mode!r}')
    if stop not in _STOPS:
        raise ValueError(
            f'stop: expected "first_exhausted", "all_exhausted" or "never", got {stop!r}')
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(sources):
            raise ValueError(
                f"names: expected {len(sources)} names (one per source), got {len(names)}")
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(
                    f"names[{i}]: {name!r} names an earlier source too; names must differ")
    return Mix(sources, weights, schedule, seed, mode, stop, names)
