"""What ``schedlab.DataLoader`` is when a ``schedlab.Pipeline`` does its work (an iterable
dataset: ``streams.IterableLoader``; a batch sampler: ``_batch_sampler.BatchSamplerLoader``)."""

from .dataloader import _MAX_SEED, _int_arg


class _PipelineLoader:
    """What ``schedlab.DataLoader`` is over a ``Pipeline`` (an iterable dataset, a batch
    sampler): the DataLoader's methods, each the pipeline's. Subclasses set ``_pipeline``."""

    def __iter__(self):
        return iter(self._pipeline)

    #: What ``set_epoch`` is forwarded to, when it has one (the dataset, the batch sampler).
    _epoch_target = None

    def set_epoch(self, epoch):
        """The epoch the next ``iter(loader)`` loads (its number in ``state_dict()`` and the
        report); forwarded to the iterable dataset's or the batch sampler's ``set_epoch`` (or
        its ``sampler``'s, a ``DistributedSampler`` inside a ``BatchSampler``) if it has one,
        as the map-style DataLoader forwards it to its sampler."""
        self._pipeline._epoch = _int_arg("epoch", epoch, 0, _MAX_SEED)
        for t in (self._epoch_target, getattr(self._epoch_target, "sampler", None)):
            if t is not None and hasattr(t, "set_epoch"):
                t.set_epoch(epoch)
                return

    def state_dict(self):
        """Where the loader stands (the epoch, the items handed out)."""
        return self._pipeline.state_dict()

    def load_state_dict(self, state):
        """Resume from ``state_dict()``: the next ``iter()`` yields the rest of that epoch."""
        self._pipeline.load_state_dict(state)

    def report(self):
        """The last epoch's statistics (``Pipeline.report()``)."""
        return self._pipeline.report()

    def close(self):
        """Stop and join every thread (and worker process)."""
        self._pipeline.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
