"""Type stubs of ``schedlab.Pipeline`` (``pipeline.py`` is the implementation and its
docstrings the reference; ``tests/test_types.py`` checks that the two list the same
parameters)."""

from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, Optional, Union

from .dataloader import Report
from .mix import Mix
from .streams import Shards

class Pipeline:
    def __init__(
        self,
        source: Union[int, Iterable[Any], Callable[[int], Iterable[Any]], Shards, Mix],
        *,
        workers: int = ...,
        ordered: bool = ...,
        shuffle: bool = ...,
        seed: int = ...,
        autotune: bool = ...,
        max_items: Optional[int] = ...,
        window: Optional[int] = ...,
        on_failure: str = ...,
        max_failures: Union[int, float, None] = ...,
        start_method: Any = ...,
        prefetch_next_epoch: bool = ...,
    ) -> None: ...
    def shuffle(self, buffer_size: int, *, seed: int = ...) -> Pipeline: ...
    def map(
        self,
        fn: Callable[[Any], Any],
        *,
        kind: str = ...,
        concurrency: Optional[int] = ...,
        name: Optional[str] = ...,
        queue: Optional[int] = ...,
        strategy: Optional[str] = ...,
        chunk: Optional[int] = ...,
    ) -> Pipeline: ...
    def filter(
        self,
        fn: Callable[[Any], Any],
        *,
        kind: str = ...,
        concurrency: Optional[int] = ...,
        name: Optional[str] = ...,
        queue: Optional[int] = ...,
        strategy: Optional[str] = ...,
    ) -> Pipeline: ...
    def flat_map(
        self,
        fn: Callable[[Any], Iterable[Any]],
        *,
        kind: str = ...,
        concurrency: Optional[int] = ...,
        name: Optional[str] = ...,
        queue: Optional[int] = ...,
        strategy: Optional[str] = ...,
    ) -> Pipeline: ...
    def batch(
        self,
        size: int,
        *,
        drop_last: bool = ...,
        collate_fn: Optional[Callable[[list[Any]], Any]] = ...,
        name: str = ...,
    ) -> Pipeline: ...
    def epoch(self, epoch: int) -> Iterator[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def report(self) -> Optional[Report]: ...
    def stats(self) -> Optional[Report]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Pipeline: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...
