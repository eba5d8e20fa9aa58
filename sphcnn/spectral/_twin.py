"""A second thread for the two halves of a CPU transform stage whose calls all release the GIL.

Why a thread of our own, though the transforms otherwise start none (see :mod:`sphcnn.spectral._fft`):
at moderate sizes on two cores the Legendre stage's matmuls are too small for OpenBLAS to split
(below its threading threshold they run on the calling thread) and torch's own ops split elementwise
glue, but not a sequence of small matmuls. The stage's orders m are independent, so one half of
them runs here and the other on the twin, each on one core, with numpy's glue in place of torch's
(whose OpenMP workers spin for milliseconds after each op, on the core the next numpy matmul or
ducc0 FFT needs). GL L = 128, float64, 16 maps, two threads: forward / inverse 5.1 / 6.4 ms against
7.7 / 7.6 ms (docs/bench_sht.md); where it pays: :func:`sphcnn.spectral._ring_legendre.use_twin`.

The twin only ever runs numpy calls (ufuncs, ``take``, ``put``, ``matmul`` below OpenBLAS's threading
threshold; of torch only `detach` and `numpy` views): no torch kernel, which could start a second
OpenMP team, and no BLAS pool. It is started on
first use, sleeps on a queue between calls, and is a daemon; a forked child starts its own. A call
while another thread is using the twin runs both halves itself, in order.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

Halves = tuple[int, ...]


class Twin:
    def __init__(self) -> None:
        self._pid = os.getpid()
        self._idle = threading.Lock()  # held from a hand-off until the twin has finished its half
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _serve(self) -> None:
        while True:
            task, reply = self._tasks.get()
            try:
                task((1,))
            except BaseException as error:  # noqa: BLE001 - handed to the caller, which re-raises it
                outcome = error
            else:
                outcome = None
            self._idle.release()
            reply.put(outcome)

    def both(self, task: Callable[[Halves], None]) -> None:
        """``task((1,))`` on the twin while ``task((0,))`` runs here; ``task((0, 1))`` here when the twin is busy.

        Returns when both halves are done (they write into the caller's buffers); an error in either is raised here.
        Each call has its own reply queue, and the twin frees itself only when its half is done, so a caller
        interrupted while waiting leaves no stale reply and no hand-off to a twin still at work.
        """
        if self._pid != os.getpid():  # threads do not survive a fork
            self.__init__()
        if not self._idle.acquire(blocking=False):
            task((0, 1))
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="sphcnn-twin", daemon=True)
            self._thread.start()
        reply: queue.SimpleQueue = queue.SimpleQueue()
        self._tasks.put((task, reply))
        try:
            task((0,))
        finally:
            error = reply.get()
        if error is not None:
            raise error


TWIN = Twin()
