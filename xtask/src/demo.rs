//! `cargo xtask demo [--seconds N] [--block N] [--offline]`: Tandem's claim, shown without a
//! DAW.
//!
//! Plays a phrase (chords, an arpeggio, a filter sweep, mod wheel and pitch bend; see
//! `demo/phrase.rs`) through the plugin's headless engine, paced like a DAW's audio thread
//! (one block per block period), and SIGKILLs one of the two workers every second, alternating,
//! as soon as the previous replacement has rejoined the lockstep. The same phrase goes through
//! the in-process reference (the same DSP with no processes). Prints the failover log as it
//! happens, then how many output frames differ from the reference, and writes
//! `target/demo/tandem-demo.wav` and `target/demo/tandem-demo.png`.
//!
//! `--offline` renders as fast as possible in the engine's offline mode instead, killing at
//! each second of audio.

mod phrase;
mod plot;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dsp::Event;
use tandem::engine::{Engine, EngineConfig, ProcessMode, ReferenceEngine};

use crate::util;
use phrase::Phrase;

const SAMPLE_RATE: f32 = 48_000.0;

struct Options {
    seconds: f64,
    block: usize,
    offline: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        seconds: 10.0,
        block: 256,
        offline: false,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--seconds" => {
                options.seconds = iter.next().context("--seconds needs a value")?.parse()?
            }
            "--block" => options.block = iter.next().context("--block needs a value")?.parse()?,
            "--offline" => options.offline = true,
            other => bail!("unknown demo option {other:?}"),
        }
    }
    if !(1.0..=600.0).contains(&options.seconds) || !(16..=4096).contains(&options.block) {
        bail!("--seconds must be 1..=600 and --block 16..=4096");
    }
    Ok(options)
}

/// Entry point for `cargo xtask demo`.
pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let worker_path = crate::bench::host::build_worker()?;
    // Show the supervisor's failover and rebuild lines as they happen.
    tandem::logging::init();

    let phrase = Phrase::demo(SAMPLE_RATE, options.seconds);
    let block = options.block;
    let latency = block as u32;
    let mode = if options.offline {
        ProcessMode::Offline
    } else {
        ProcessMode::Realtime
    };
    let config = EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: block,
        latency,
        mode,
        protection: tandem::engine::Protection::Lockstep,
        worker_path,
    };
    println!(
        "Tandem demo: {:.0} s at {} Hz, blocks of {block}, latency {latency} frames, {:?}; \
         a worker is SIGKILLed every second",
        options.seconds, SAMPLE_RATE, mode
    );
    let mut engine = Engine::activate(config).context("starting the engine")?;
    let mut reference = ReferenceEngine::new(SAMPLE_RATE, block, latency)
        .context("starting the in-process reference")?;

    let total = phrase.frames as usize;
    let mut out = [vec![0.0f32; total], vec![0.0f32; total]];
    let mut want = [vec![0.0f32; total], vec![0.0f32; total]];
    let mut cutoff = vec![0.0f32; total];
    let mut events: Vec<Event> = Vec::with_capacity(256);
    let mut kills: Vec<u64> = Vec::new();
    let mut next_kill = SAMPLE_RATE as u64;
    let mut victim_slot = 0;
    let mut late_frames = 0u64;
    let period = Duration::from_secs_f64(block as f64 / f64::from(SAMPLE_RATE));
    let started = Instant::now();

    let mut frame = 0usize;
    let mut blocks = 0u32;
    while frame < total {
        let n = block.min(total - frame);
        if frame as u64 >= next_kill && engine.in_lockstep() {
            if let Some(pid) = engine.worker_pid(victim_slot) {
                // SAFETY: kill(2) on a pid the engine just reported as its live worker.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                println!(
                    "  {:>6.3} s  SIGKILL worker {victim_slot} (pid {pid})",
                    frame as f64 / f64::from(SAMPLE_RATE)
                );
                kills.push(frame as u64);
                victim_slot = 1 - victim_slot;
                // The next whole second still ahead (a late kill does not bunch the next ones).
                while next_kill <= frame as u64 {
                    next_kill += SAMPLE_RATE as u64;
                }
            }
        }
        phrase.block_events(frame as u64, n, &mut events);
        let params = phrase.params_at(frame as u64);
        cutoff[frame..frame + n].fill(params[dsp::ParamId::Cutoff.index()]);
        let [l, r] = &mut out;
        let report = engine.process(
            &events,
            &params,
            None,
            [&mut l[frame..frame + n], &mut r[frame..frame + n]],
        );
        late_frames += u64::from(report.fallback_frames);
        let [l, r] = &mut want;
        reference.process(
            &events,
            &params,
            None,
            [&mut l[frame..frame + n], &mut r[frame..frame + n]],
        );
        frame += n;
        blocks += 1;
        if !options.offline {
            // Pace like an audio interface: block k is due at k block periods.
            let due = period * blocks;
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let elapsed = started.elapsed();
    let stats = engine.stats();
    let failures = stats.failures.load(std::sync::atomic::Ordering::Relaxed);
    let rebuilds = stats.rebuilds.load(std::sync::atomic::Ordering::Relaxed);
    drop(engine);

    let differing = (0..total)
        .filter(|&i| {
            out[0][i].to_bits() != want[0][i].to_bits()
                || out[1][i].to_bits() != want[1][i].to_bits()
        })
        .count();

    let dir = util::workspace_target().join("demo");
    std::fs::create_dir_all(&dir)?;
    let wav = dir.join("tandem-demo.wav");
    write_wav(&wav, &out)?;
    let png = dir.join("tandem-demo.png");
    // A kill shows in the output `latency` frames later.
    let kill_marks: Vec<u64> = kills.iter().map(|k| k + u64::from(latency)).collect();
    let labelled = plot::draw(
        &plot::Picture {
            sample_rate: SAMPLE_RATE,
            output: &out[0],
            reference: &want[0],
            cutoff: &cutoff,
            kills: &kill_marks,
        },
        &png,
    )?;

    println!();
    println!(
        "rendered {:.1} s of audio in {:.1} s; {} kills, {failures} worker failures seen, \
         {rebuilds} rebuilds verified",
        total as f64 / f64::from(SAMPLE_RATE),
        elapsed.as_secs_f64(),
        kills.len()
    );
    println!("frames filled by the fallback (xruns): {late_frames}");
    println!(
        "frames differing from the in-process render: {differing} of {total}{}",
        if differing == 0 { " (bit-exact)" } else { "" }
    );
    println!("wrote {}", wav.display());
    println!(
        "wrote {}{}",
        png.display(),
        if labelled {
            ""
        } else {
            " (no system font: top = output with kills in red, middle = cutoff, \
             bottom = output minus reference)"
        }
    );
    Ok(())
}

/// Writes stereo 32-bit float WAV.
fn write_wav(path: &std::path::Path, channels: &[Vec<f32>; 2]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: SAMPLE_RATE as u32,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for (l, r) in channels[0].iter().zip(&channels[1]) {
        writer.write_sample(*l)?;
        writer.write_sample(*r)?;
    }
    writer.finalize()?;
    Ok(())
}
