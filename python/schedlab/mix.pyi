"""Type stubs of ``schedlab.mix`` (``mix.py`` is the implementation and its docstrings the
reference; ``tests/test_types.py`` checks that the two list the same parameters)."""

from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Union

from .streams import Shards

_Stream = Union[Iterable[Any], Callable[[int], Iterable[Any]], Shards, "Mix"]

class Mix:
    """A weighted mix of streams for ``schedlab.Pipeline`` (made by :func:`mix`)."""

    def stats(self) -> Optional[Dict[str, Any]]: ...
    def report(self) -> Optional[str]: ...

def mix(
    sources: Sequence[_Stream],
    weights: Union[Sequence[float], Callable[[int], Sequence[float]]],
    *,
    seed: int = ...,
    mode: str = ...,
    stop: str = ...,
    names: Optional[Sequence[str]] = ...,
) -> Mix: ...
