"""Type stubs of ``schedlab.DataLoader`` and its report (``dataloader.py`` is the
implementation and its docstrings the reference; ``tests/test_types.py`` checks that the two
list the same parameters)."""

from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

class Report(dict[str, Any]):
    """A report: a dict that prints as text."""

    def __init__(self, data: dict[str, Any], text: str) -> None: ...

def gil_verdict(
    workers: Sequence[dict[str, Any]], elapsed_s: Optional[float] = ..., what: str = ...
) -> str: ...

class DataLoader:
    dataset: Any
    batch_size: Optional[int]
    num_workers: int
    drop_last: bool
    strategy: str
    def __init__(
        self,
        dataset: Any,
        batch_size: Optional[int] = ...,
        shuffle: Optional[bool] = ...,
        sampler: Optional[Iterable[Any]] = ...,
        batch_sampler: Optional[Iterable[Sequence[Any]]] = ...,
        num_workers: int = ...,
        collate_fn: Optional[Callable[[Any], Any]] = ...,
        pin_memory: bool = ...,
        drop_last: bool = ...,
        timeout: float = ...,
        worker_init_fn: Optional[Callable[[int], Any]] = ...,
        multiprocessing_context: Any = ...,
        generator: Any = ...,
        *,
        prefetch_factor: Optional[int] = ...,
        persistent_workers: bool = ...,
        pin_memory_device: str = ...,
        in_order: Optional[bool] = ...,
        ordered: bool = ...,
        batch_timeout: Optional[float] = ...,
        strategy: Optional[str] = ...,
        seed: Optional[int] = ...,
        autotune: bool = ...,
        max_items: Optional[int] = ...,
        worker_type: str = ...,
        chunk: Optional[int] = ...,
    ) -> None: ...
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> DataLoader: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
    def state_dict(self) -> dict[str, Any]: ...
    @property
    def in_order(self) -> bool: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def report(self) -> Optional[Report]: ...
