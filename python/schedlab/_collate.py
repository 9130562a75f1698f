"""``default_collate``: torch's rules, into numpy arrays (torch tensors for torch samples)."""

import collections.abc
import sys

import numpy as np


def _is_torch_tensor(x):
    # Never imports torch: a torch tensor can only exist if torch was imported already.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def default_collate(batch):
    """Stack a list of samples into a batch, as ``torch.utils.data.default_collate`` does.

    * numpy arrays -> one array with a leading batch dimension (``np.stack``);
    * torch tensors -> ``torch.stack`` (only when the samples are tensors);
    * Python ``int`` / ``float`` / ``bool`` -> ``int64`` / ``float64`` / ``bool`` arrays;
      numpy scalars -> an array of their dtype;
    * ``str`` / ``bytes`` -> the list unchanged;
    * mappings -> a dict of collated values per key; named tuples -> the same named tuple of
      collated fields; other sequences (tuples, lists) -> a list of collated columns (each
      sample must have the same length).

    >>> default_collate([(1, 2.0), (3, 4.0)])
    [array([1, 3]), array([2., 4.])]
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise TypeError("default_collate: expected a non-empty list of samples")
    elem = batch[0]
    if _is_torch_tensor(elem):
        return sys.modules["torch"].stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUS":
            raise TypeError(
                f"default_collate: numpy arrays of dtype {elem.dtype} cannot be batched"
            )
        return np.stack(batch, 0)
    if isinstance(elem, np.generic):
        return np.array(batch, dtype=elem.dtype)
    if isinstance(elem, bool):
        return np.array(batch, dtype=np.bool_)
    if isinstance(elem, int):
        return np.array(batch, dtype=np.int64)
    if isinstance(elem, float):
        return np.array(batch, dtype=np.float64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(e) != n for e in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(
        "default_collate: batch must contain numpy arrays, numbers, strings, dicts, lists "
        f"or torch tensors; found {type(elem).__name__}"
    )
