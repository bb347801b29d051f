"""Peak memory of each instance (its process and children), sampled in a thread.

PSS (proportional set size) counts a page shared between processes once in all, as the
container's memory accounting does; RSS would count it in each process.
"""

from __future__ import annotations

import threading

import psutil

MIB = 1024 * 1024


def tree_pss(pid: int) -> int:
    """Bytes of memory `pid` and its children use (PSS; RSS where PSS cannot be read)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except psutil.AccessDenied:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


class MemorySampler:
    """Samples every instance's memory until stopped; keeps each one's peak."""

    def __init__(self, pids: list[int], every: float = 0.5) -> None:
        self.pids = pids
        self.every = every
        self.peaks = [0] * len(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory", daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> list[float]:
        """Stop sampling; each instance's peak in MiB."""
        self._stop.set()
        self._thread.join()
        return [round(peak / MIB, 1) for peak in self.peaks]

    def _run(self) -> None:
        while True:
            for index, pid in enumerate(self.pids):
                self.peaks[index] = max(self.peaks[index], tree_pss(pid))
            if self._stop.wait(self.every):
                return
