"""What this container was granted: CPUs and memory from its cgroup (v2, or v1), not the host's,
and the GPUs it sees.

Docker's --cpus/--memory, SageMaker instances and serverless endpoints (1-6 GB) all set them;
``os.cpu_count()`` and /proc/meminfo would report the whole host. Each function takes the cgroup
root, so tests read fake files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a huge number


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def affinity_cpus() -> int:
    """CPUs this process may be scheduled on (taskset, cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cgroup_cpus(root: Path = CGROUP) -> float | None:
    """The CPU quota in CPUs (``--cpus 1.5`` → 1.5), or None without a quota."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota, period = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def granted_cpus(root: Path = CGROUP) -> int:
    """Whole CPUs the container may use: its affinity, capped by its cgroup quota (rounded up)."""
    cpus = affinity_cpus()
    quota = cgroup_cpus(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return cpus


def granted_memory_mb(root: Path = CGROUP) -> float | None:
    """The container's memory limit in MiB, or None without one."""
    for limit_file in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        text = _read(limit_file)
        if text is None:
            continue
        if text == "max" or int(text) >= _UNLIMITED:
            return None
        return int(text) / 2**20
    return None


def host_available_mb() -> float:
    """Memory the host still has available (page cache counted as free)."""
    import psutil

    return psutil.virtual_memory().available / 2**20


def memory_available_mb(root: Path = CGROUP) -> float:
    """Memory this container may still use: its cgroup's limit minus usage (page cache excluded),
    at most what the host has available."""
    host = host_available_mb()
    for limit_file, usage_file, stat_file, cache_key in (
        (root / "memory.max", root / "memory.current", root / "memory.stat", "inactive_file"),
        (
            root / "memory" / "memory.limit_in_bytes",
            root / "memory" / "memory.usage_in_bytes",
            root / "memory" / "memory.stat",
            "total_inactive_file",
        ),
    ):
        limit, usage, stat = _read(limit_file), _read(usage_file), _read(stat_file)
        if limit is None or usage is None:
            continue
        if limit == "max" or int(limit) >= _UNLIMITED:
            return host
        cache = dict(line.split() for line in (stat or "").splitlines() if line.count(" ") == 1)
        used = int(usage) - int(cache.get(cache_key, 0))
        return min(host, (int(limit) - used) / 2**20)
    return host


def gpu_count() -> int:
    """The GPUs this process can use (0 without CUDA, or without torch: the CLI's environment)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
