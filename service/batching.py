"""BentoML's adaptive batching, without its waits to fill a batch.

BentoML 1.4's CorkDispatcher (bentoml/_internal/marshal/dispatcher.py) holds requests
back, hoping for a fuller batch, in two places:

- its start-up training: after eight single-request batches, the next batches are held
  until 2, then 3 requests are queued, or for up to `5 a + b` and `7 a + b` seconds, where
  `a` and `b` are its fit of batch latency. After one long batch (a text cut into many
  sentences), that is seconds. Measured on this 2-core machine while other processes kept
  both cores busy: a one-sentence /synthesize sent alone, after a 57-sentence one and
  three short ones at once, took 4.6-5.4 s instead of 0.2 s;
- afterwards, while `n * (age of the newest request + a) <= 0.95 * optimizer.wait`, where
  `optimizer.wait` is the mean of how long the first request of each recent batch waited
  before dispatch. Those waits are mostly queueing behind a running batch, so after a
  burst a request arriving alone is held for about that mean, with nothing to batch it
  with (read from the code; not seen in the run above, where queues stayed short).

PAIS batches the way its in-process runners do: a batch is what queued while the previous
one ran, dispatched as soon as the model is free (the semaphore BentoML keeps). So the
training batches are of one request, as its warm-up's are, and the optimizer's `wait` is
held at zero. Its latency fit (`o_a`, `o_b`), which BentoML uses to refuse work past
`max_latency_ms`, is left as it is. With both, that request took 0.13-0.21 s in 18 tries.
"""

from __future__ import annotations

from typing import Any

from bentoml._internal.marshal import dispatcher


class NoFillWaitOptimizer(dispatcher.Optimizer):
    """BentoML's optimizer whose `wait` (how long to hold requests for a fuller batch) is
    always zero."""

    @property
    def wait(self) -> float:
        return 0.0

    @wait.setter
    def wait(self, value: Any) -> None:
        """BentoML sets the mean queueing delay here: not a reason to hold requests."""


_train_optimizer = dispatcher.CorkDispatcher.train_optimizer


async def _train_on_single_requests(
    self: dispatcher.CorkDispatcher, num_required_reqs: int, num_reqs_to_train: int, training_batch_size: int
) -> None:
    """BentoML's training step, on batches of one request: nothing waits to fill one."""
    await _train_optimizer(self, num_required_reqs, num_reqs_to_train, 1)


def dispatch_without_fill_waits() -> None:
    """Make dispatchers built from now on use NoFillWaitOptimizer (CorkDispatcher looks up
    `Optimizer` in its module when it is built, in each model-service worker) and train on
    single requests."""
    dispatcher.Optimizer = NoFillWaitOptimizer
    dispatcher.CorkDispatcher.train_optimizer = _train_on_single_requests  # type: ignore[method-assign]
