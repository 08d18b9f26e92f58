"""Tandem.vst3 in pedalboard (Spotify's JUCE-based host).

pedalboard takes about 20 s to load Tandem: for VST3, nice-plug exposes MIDI controllers as
2080 hidden parameters (VST3 has no CC events), and pedalboard probes every parameter's text
on load. So the tests share loads where they can.
"""

import gc

import numpy as np
import pytest
from pedalboard import load_plugin

from conftest import (
    SAMPLE_RATE,
    Log,
    centroid,
    child_pids,
    chord_messages,
    first_difference,
    kill,
    repeat_until_no_xrun,
    rms,
    worker_pids,
)

BLOCK = 512
CHUNK_SECONDS = 0.25


def chunked_render(plugin, seconds, between=None):
    """Renders `seconds` of chords in CHUNK_SECONDS pieces without resetting the plugin, so
    the host can act between pieces: `between(i)` runs before piece i (automation, kills)."""
    messages = chord_messages(seconds)
    pieces = []
    n = int(round(seconds / CHUNK_SECONDS))
    for i in range(n):
        if between is not None:
            between(i)
        start = i * CHUNK_SECONDS
        mine = [(m, t - start) for m, t in messages if start <= t < start + CHUNK_SECONDS]
        pieces.append(
            plugin(
                mine,
                duration=CHUNK_SECONDS,
                sample_rate=SAMPLE_RATE,
                num_channels=2,
                buffer_size=BLOCK,
                reset=False,
            )
        )
    return np.concatenate(pieces, axis=1)


@pytest.fixture(scope="module")
def plugin(vst3_path):
    return load_plugin(vst3_path)


def test_loads_as_an_instrument(plugin):
    assert plugin.is_instrument
    assert plugin.name == "Tandem"
    for name in ["cutoff_hz", "resonance", "bypass", "latency", "master_gain_db"]:
        assert name in plugin.parameters, name
    plugin.cutoff_hz = 1000.0
    assert abs(plugin.cutoff_hz - 1000.0) < 1.0


def test_notes_and_host_automation(plugin):
    seconds = 4.0
    steps = int(seconds / CHUNK_SECONDS)

    def sweep(i):
        # The host moves the cutoff up between pieces, from 100 Hz to 10 kHz (log steps).
        plugin.cutoff_hz = float(100.0 * (100.0 ** (i / (steps - 1))))

    audio = chunked_render(plugin, seconds, sweep)
    assert audio.shape == (2, int(seconds * SAMPLE_RATE))
    assert np.all(np.isfinite(audio))
    assert rms(audio) > 1e-3
    first = centroid(audio[0, : SAMPLE_RATE])
    last = centroid(audio[0, -SAMPLE_RATE:])
    assert last > 1.5 * first, (first, last)


def test_killing_a_worker_changes_nothing_and_no_process_remains(vst3_path):
    seconds = 3.0

    def render(kill_at=None):
        log = Log()
        before = set(child_pids())
        plugin = load_plugin(vst3_path)
        killed = []

        def maybe_kill(i):
            if i == kill_at:
                mine = [p for p in worker_pids() if p not in before]
                assert len(mine) == 2, mine
                kill(mine[0])
                killed.append(mine[0])

        audio = chunked_render(plugin, seconds, maybe_kill)
        del plugin
        gc.collect()
        if kill_at is not None:
            assert killed, "the render ended before the kill"
            assert log.failure_of(killed[0]), "the engine never noticed the kill"
        # Destroying the plugin kills and reaps its workers, the replacement included.
        assert [p for p in child_pids() if p not in before] == []
        return audio

    reference = repeat_until_no_xrun(render)
    assert rms(reference) > 1e-3
    killed = repeat_until_no_xrun(lambda: render(kill_at=6))
    assert first_difference(reference, killed) is None


def test_a_render_is_exact_even_while_both_workers_stall(vst3_path):
    """pedalboard renders in realtime mode as fast as it can. Tandem tells that from the call
    pace and waits for exact frames as offline does, so a stall of both workers (far longer
    than any realtime deadline, and longer than the 10 ms after which the supervisor replaces a
    stopped worker) changes nothing and costs no xrun."""
    import os
    import signal
    import threading

    seconds = 3.0

    def render(stall_at=None):
        log = Log()
        before = set(child_pids())
        plugin = load_plugin(vst3_path)
        stopped = []

        def maybe_stall(i):
            if i == stall_at:
                mine = [p for p in worker_pids() if p not in before]
                for pid in mine:
                    os.kill(pid, signal.SIGSTOP)
                stopped.extend(mine)

                def resume():
                    for pid in mine:
                        try:
                            os.kill(pid, signal.SIGCONT)
                        except ProcessLookupError:
                            pass  # replaced as hung meanwhile

                threading.Timer(0.03, resume).start()

        audio = chunked_render(plugin, seconds, maybe_stall)
        del plugin
        gc.collect()
        if stall_at is not None:
            assert len(stopped) == 2, stopped
        return audio, log

    reference, reference_log = render()
    stalled, stalled_log = render(stall_at=6)
    assert rms(reference) > 1e-3
    xruns = (reference_log.xruns(), stalled_log.xruns())
    assert xruns == ([], []), xruns
    assert first_difference(reference, stalled) is None, stalled_log.lines()
