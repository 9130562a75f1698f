"""Type stub of ``schedlab.default_collate`` (``_collate.py``)."""

from typing import Any

def default_collate(batch: list[Any]) -> Any: ...
