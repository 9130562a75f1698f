"""Type stubs of ``schedlab.shards`` (``streams.py`` is the implementation and its docstrings
the reference; ``tests/test_types.py`` checks that the two list the same parameters)."""

import os
from typing import Any, Callable, Iterable, Union

class Shards:
    """A sharded source for ``schedlab.Pipeline`` (made by :func:`shards`)."""

def shards(
    paths: Iterable[Union[str, os.PathLike[str]]],
    *,
    rank: int = ...,
    world_size: int = ...,
    shuffle: bool = ...,
    seed: int = ...,
    reader: Union[str, Callable[[str], Iterable[Any]]] = ...,
    balanced: bool = ...,
) -> Shards: ...
