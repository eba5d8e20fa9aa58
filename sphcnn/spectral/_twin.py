"""A second thread for the two halves of a CPU transform whose calls all release the GIL.

Why a thread of our own, though the transforms otherwise start none (see :mod:`sphcnn.spectral._fft`):
at moderate sizes on two cores the Legendre stage's matmuls are too small for OpenBLAS to split
(below its threading threshold they run on the calling thread) and torch's own ops split elementwise
glue, but not a sequence of small matmuls. The stage's orders m are independent, so one half of
them runs here and the other on the twin, each on one core, with numpy's glue in place of torch's
(whose OpenMP workers spin for milliseconds after each op, on the core the next numpy matmul or
ducc0 FFT needs). Where it pays: :func:`sphcnn.spectral._ring_legendre.use_twin`.

A transform hands over once: its stages are *phases*, each split in two halves (the ring FFTs into
the northern and the southern rings, the Legendre stage into two sets of orders m), and the two
threads meet at a barrier between phases. Every hand-off and every wait on the other thread costs a
wake-up: on the Firecracker VMs of our benchmarks an idle vCPU halts at once
(``haltpoll.guest_halt_poll_ns=0``), an empty call of :meth:`Twin.run` takes 0.1–0.3 ms, and the FFT
libraries' own pools cost more such wake-ups. GL L = 128, 16 maps, two threads, medians of
alternating process pairs, forward / inverse, against a hand-off per stage with the FFTs on their
libraries' pools (2571cdb): float32 3.2–3.5 / 3.9–4.4 ms against 3.8–3.9 / 4.3–4.6 ms, float64
5.0 / 5.8 against 5.7 / 6.8 ms; L = 256 and 512 on par (docs/bench_sht.md). Fixed halves keep each
thread on the same blocks, and their tables in its core's cache, call after call: letting the threads
claim blocks and ring chunks one at a time, whoever is free, ran 5–10 % slower (in one process,
alternating).

The twin only ever runs numpy calls (ufuncs, ``take``, ``put``, ``matmul`` below OpenBLAS's threading
threshold, one-thread FFTs of ducc0 or scipy; of torch only `detach` and `numpy` views): no torch
kernel, which could start a second OpenMP team, and no BLAS pool. It is started on first use, sleeps
on a queue between calls, and is a daemon; a forked child starts its own. A call while another
thread is using the twin runs both halves of each phase itself, in order.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

Halves = tuple[int, ...]
Phase = Callable[[Halves], None]


class Twin:
    def __init__(self) -> None:
        self._pid = os.getpid()
        self._idle = threading.Lock()  # held from a hand-off until both threads have left its phases
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._barrier = threading.Barrier(2)
        self._inside = 0
        self._leaving = threading.Lock()
        self._thread: threading.Thread | None = None

    def _serve(self) -> None:
        while True:
            phases, reply = self._tasks.get()
            outcome = self._run_half(phases, (1,))
            self._leave()
            reply.put(outcome)

    def _run_half(self, phases: tuple[Phase, ...], half: Halves) -> BaseException | None:
        """Run ``half`` of each phase, meeting the other thread after each; an error breaks the barrier, so that
        the other thread stops at its next meeting instead of waiting for ever."""
        try:
            for phase in phases:
                phase(half)
                self._barrier.wait()
        except threading.BrokenBarrierError:
            return None  # the other half failed: its error is the one raised
        except BaseException as error:  # noqa: BLE001 - handed to the caller, which re-raises it
            self._barrier.abort()
            return error
        return None

    def _leave(self) -> None:
        """The second thread to leave a call mends a broken barrier (no one waits on it then) and frees the twin."""
        with self._leaving:
            self._inside -= 1
            if self._inside == 0:
                if self._barrier.broken:
                    self._barrier.reset()
                self._idle.release()

    def run(self, *phases: Phase) -> None:
        """For each phase in order, ``phase((1,))`` on the twin while ``phase((0,))`` runs here, the next phase
        starting when both halves of the last are done; ``phase((0, 1))`` here when the twin is busy.

        Returns when both threads are done (they write into the caller's buffers); an error in either half is
        raised here (the caller's first), and the phases after it are not run. Each call has its own reply queue,
        and the twin is freed only when both threads have left the call, so a caller interrupted while waiting
        leaves no stale reply and no hand-off to a twin still at work.
        """
        if self._pid != os.getpid():  # threads do not survive a fork
            self.__init__()
        if not self._idle.acquire(blocking=False):
            for phase in phases:
                phase((0, 1))
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="sphcnn-twin", daemon=True)
            self._thread.start()
        self._inside = 2
        reply: queue.SimpleQueue = queue.SimpleQueue()
        self._tasks.put((phases, reply))
        try:
            mine = self._run_half(phases, (0,))
            self._leave()
        finally:
            theirs = reply.get()
        if mine is not None or theirs is not None:
            raise mine if mine is not None else theirs


TWIN = Twin()
