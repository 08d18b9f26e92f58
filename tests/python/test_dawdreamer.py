"""Tandem.vst3 in DawDreamer (a JUCE-based offline DAW engine for Python)."""

import gc
import threading
import time

import dawdreamer as daw
import numpy as np

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


def make(vst3_path, seconds, sweep=True):
    """A fresh engine with Tandem playing chords; the host automates the cutoff sample by
    sample from 5 % to 95 % of its range (DawDreamer's own automation, not MIDI)."""
    engine = daw.RenderEngine(SAMPLE_RATE, BLOCK)
    synth = engine.make_plugin_processor("tandem", vst3_path)
    for message, t in chord_messages(seconds):
        if message[0] == 0x90:
            synth.add_midi_note(message[1], message[2], t, 0.4)
    if sweep:
        names = [p["name"] for p in synth.get_parameters_description()]
        cutoff = names.index("Cutoff")
        frames = int(seconds * SAMPLE_RATE)
        synth.set_automation(cutoff, np.linspace(0.05, 0.95, frames, dtype=np.float32))
    engine.load_graph([(synth, [])])
    return engine, synth


def test_notes_and_host_automation(vst3_path):
    seconds = 4.0
    engine, synth = make(vst3_path, seconds)
    engine.render(seconds)
    audio = engine.get_audio()
    assert audio.shape[0] == 2 and audio.shape[1] >= int(seconds * SAMPLE_RATE) - BLOCK
    assert np.all(np.isfinite(audio))
    assert rms(audio) > 1e-3
    first = centroid(audio[0, :SAMPLE_RATE])
    last = centroid(audio[0, -SAMPLE_RATE:])
    assert last > 1.5 * first, (first, last)


def render(vst3_path, seconds, kill_after=None):
    """Renders on a fresh engine; with `kill_after` (seconds of wall time), a thread SIGKILLs
    one of this instance's workers while `render()` runs. Returns (audio, killed mid-render)."""
    log = Log()
    before = set(child_pids())
    engine, synth = make(vst3_path, seconds)
    mine = [p for p in worker_pids() if p not in before]
    assert len(mine) == 2, mine
    rendering = threading.Event()
    killed_mid_render = []

    def killer():
        rendering.wait()
        time.sleep(kill_after)
        if rendering.is_set():
            kill(mine[0])
            killed_mid_render.append(rendering.is_set())

    thread = None
    if kill_after is not None:
        thread = threading.Thread(target=killer)
        thread.start()
    rendering.set()
    engine.render(seconds)
    rendering.clear()
    if thread is not None:
        thread.join()
    audio = engine.get_audio()
    del synth, engine
    gc.collect()
    # Destroying the plugin kills and reaps its workers, a replacement included.
    assert [p for p in child_pids() if p not in before] == []
    if killed_mid_render:
        assert log.failure_of(mine[0]), "the engine never noticed the kill"
    return audio, bool(killed_mid_render) and all(killed_mid_render)


def test_killing_a_worker_mid_render_changes_nothing(vst3_path):
    seconds = 8.0
    reference = repeat_until_no_xrun(lambda: render(vst3_path, seconds)[0])
    assert rms(reference) > 1e-3
    # The kill must land while the host is inside render(); if this machine rendered the
    # phrase faster than the killer woke up, try again with a longer phrase.
    for _ in range(4):
        outcome = {}

        def attempt():
            audio, mid = render(vst3_path, seconds, kill_after=0.05)
            outcome["mid"] = mid
            return audio

        killed = repeat_until_no_xrun(attempt)
        if outcome["mid"]:
            assert first_difference(reference[:, : killed.shape[1]], killed) is None
            return
        seconds *= 2
        reference = repeat_until_no_xrun(lambda: render(vst3_path, seconds)[0])
    raise AssertionError("never managed to kill a worker while the host was rendering")


def test_eight_instances_in_one_graph(vst3_path):
    """Eight Tandems mixed in one DawDreamer graph each sound like they do alone."""
    seconds = 1.0

    def one_note(synth, i):
        synth.add_midi_note(48 + 3 * i, 100, 0.0, 0.5)

    def solo(i):
        engine = daw.RenderEngine(SAMPLE_RATE, BLOCK)
        synth = engine.make_plugin_processor(f"tandem{i}", vst3_path)
        one_note(synth, i)
        engine.load_graph([(synth, [])])
        engine.render(seconds)
        audio = engine.get_audio()
        del synth, engine
        gc.collect()
        return audio

    def together():
        before = set(child_pids())
        engine = daw.RenderEngine(SAMPLE_RATE, BLOCK)
        synths = []
        for i in range(8):
            synth = engine.make_plugin_processor(f"tandem{i}", vst3_path)
            synth.record = True
            one_note(synth, i)
            synths.append(synth)
        mixer = engine.make_add_processor("mix", [1.0] * 8)
        engine.load_graph([(s, []) for s in synths] + [(mixer, [s.get_name() for s in synths])])
        assert len([p for p in worker_pids() if p not in before]) == 16
        engine.render(seconds)
        audio = np.stack([s.get_audio() for s in synths])
        del synths, mixer, engine
        gc.collect()
        assert [p for p in child_pids() if p not in before] == []
        return audio

    alone = [repeat_until_no_xrun(lambda: solo(i)) for i in range(8)]
    mixed = repeat_until_no_xrun(together)
    for i in range(8):
        assert rms(alone[i]) > 1e-3, i
        assert first_difference(alone[i], mixed[i]) is None, i
