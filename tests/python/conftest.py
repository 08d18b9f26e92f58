"""Shared helpers for the VST3 host tests (pedalboard and DawDreamer, both JUCE hosts).

The plugin under test is the bundle `cargo xtask bundle tandem --release` builds:
`target/bundled/Tandem.vst3`, or the folder in `TANDEM_BUNDLE_DIR`. It is copied alone into a
temporary folder first, so the tests prove it is self-contained.

Both hosts run plugins in realtime mode and call them back to back, faster than real time.
Tandem tells that from the call pace and then waits for exact frames as offline does
(docs/ARCHITECTURE.md, "Timing"), but only after the few blocks that reveal the pace; until
then a late block gets the declicked fallback (an xrun), and such a render is not comparable bit
for bit. The plugin logs every xrun, so the comparisons below read the log and repeat a render
that had one, instead of assuming anything about timing.
"""

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 48000

# The plugin's logger reads NICE_LOG once, when the library is loaded: point it at a file we
# can read back before any test loads the plugin.
LOG_PATH = Path(tempfile.mkdtemp(prefix="tandem-log-")) / "tandem.log"
os.environ["NICE_LOG"] = str(LOG_PATH)
atexit.register(shutil.rmtree, LOG_PATH.parent, ignore_errors=True)
os.environ.setdefault("TANDEM_LOG", "info")


def bundle_dir() -> Path:
    return Path(os.environ.get("TANDEM_BUNDLE_DIR", REPO / "target" / "bundled"))


@pytest.fixture(scope="session")
def vst3_path():
    source = bundle_dir() / "Tandem.vst3"
    if not (source / "Contents" / "x86_64-linux" / "Tandem.so").is_file():
        pytest.fail(f"{source} is missing: run `cargo xtask bundle tandem --release` first")
    folder = Path(tempfile.mkdtemp(prefix="tandem-vst3-"))
    copy = folder / "Tandem.vst3"
    shutil.copytree(source, copy)
    yield str(copy)
    shutil.rmtree(folder, ignore_errors=True)


class Log:
    """The plugin's log lines since a point in time."""

    def __init__(self):
        self.offset = LOG_PATH.stat().st_size if LOG_PATH.exists() else 0

    def lines(self):
        if not LOG_PATH.exists():
            return []
        with open(LOG_PATH, "r", errors="replace") as f:
            f.seek(self.offset)
            return f.read().splitlines()

    def xruns(self):
        return [line for line in self.lines() if "xrun" in line]

    def failure_of(self, pid: int):
        """The engine's line about worker `pid` dying or being evicted, if any."""
        for line in self.lines():
            if f"pid {pid})" in line and "started" not in line:
                return line
        return None


def child_pids():
    """This process's children, zombies included, from /proc."""
    me = os.getpid()
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        after = stat[stat.rfind(")") + 1 :].split()
        if len(after) > 1 and int(after[1]) == me:
            children.append(int(entry))
    return sorted(children)


def is_worker(pid: int) -> bool:
    try:
        return "tandem-worker" in os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False


def is_spare(pid: int) -> bool:
    """Spawned as a spare worker (`--spare`), asleep until a slot needs it (one that has since
    taken a slot keeps its command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--spare" in f.read().split(b"\0")
    except OSError:
        return False


def worker_pids():
    """This process's workers spawned into a slot (not as spares)."""
    return [p for p in child_pids() if is_worker(p) and not is_spare(p)]


def kill(pid: int):
    os.kill(pid, signal.SIGKILL)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def centroid(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Energy-weighted spectral centroid over Hann-windowed 2048-frame FFTs."""
    n = 2048
    window = np.hanning(n)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    weighted = 0.0
    total = 0.0
    for start in range(0, len(signal) - n + 1, n // 2):
        power = np.abs(np.fft.rfft(signal[start : start + n] * window)) ** 2
        weighted += float(np.sum(power[1:] * freqs[1:]))
        total += float(np.sum(power[1:]))
    return weighted / total if total > 0 else 0.0


def chord_messages(seconds: float, offset: float = 0.0):
    """Raw MIDI (bytes, time in seconds) for a chord every half second, held 0.4 s."""
    roots = [48, 53, 55, 50]
    messages = []
    t = 0.0
    i = 0
    while t < seconds - 1e-9:
        root = roots[i % len(roots)]
        for j, interval in enumerate((0, 4, 7)):
            key = root + interval
            messages.append((bytes([0x90, key, 80 + 10 * j]), offset + t))
            messages.append((bytes([0x80, key, 0]), offset + t + 0.4))
        t += 0.5
        i += 1
    return messages


def first_difference(a: np.ndarray, b: np.ndarray):
    """The first frame where two renders differ bitwise, or None."""
    if a.shape != b.shape:
        return 0
    diff = np.nonzero(np.any(a.view(np.uint32) != b.view(np.uint32), axis=0))[0]
    return int(diff[0]) if len(diff) else None


def repeat_until_no_xrun(render, attempts: int = 4):
    """Runs `render()` (which returns audio) until the plugin logged no xrun during it."""
    for _ in range(attempts):
        log = Log()
        audio = render()
        if not log.xruns():
            return audio
    with open(LOG_PATH, errors="replace") as f:
        tail = "\n".join(f.read().splitlines()[-20:])
    pytest.fail(f"every one of {attempts} realtime renders had an xrun; log tail:\n{tail}")
