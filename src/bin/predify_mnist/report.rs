//! `predify-mnist report`: one Markdown report (`OUT/report.md`) of the robustness of the
//! predified network: the noise table and the MNIST-C corruption table with paired intervals,
//! for each hyperparameter configuration (Predify's defaults, the paper's, and the paper's with
//! α = 0 by default), their plots, and an example grid of the corruptions.
//!
//! Sized to finish in minutes on 2 cores: [`DEFAULT_IMAGES`] test images unless `--eval-limit N`
//! or `--full`. Feedback weights come from `--feedback PATH`, else from the main job's checkpoint
//! `OUT/checkpoint.safetensors` when it exists, else they are trained here (`--epochs`, as the
//! main job does, and saved to that checkpoint for the next run).

use super::{load_backbone, load_data, load_feedback, train_config, Args, BoxResult};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use predify::corruptions::{self, Corruption};
use predify::data::{self, Dataset};
use predify::eval::{self, EvalConfig, HyperPreset, Noise, Report};
use predify::train::{self, Trainer};
use predify::zoo::mnist8::PMnist8;
use predify::Predified;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// Test images evaluated by default (`--full`: all of them).
pub const DEFAULT_IMAGES: usize = 1000;

/// The configurations a report compares: `--hyper` (default: predify and paper), each also with
/// α = 0 where `--alpha-zero` is given; without `--hyper` and `--alpha-zero`, the paper's α = 0
/// ablation is added (the question the report answers: how much of the effect is the error term).
fn configurations(args: &Args) -> Vec<(HyperPreset, bool)> {
    match &args.hyper {
        Some(list) => list.iter().flat_map(|&h| std::iter::once((h, false)).chain(args.alpha_zero.then_some((h, true)))).collect(),
        None => vec![(HyperPreset::Predify, false), (HyperPreset::Paper, false), (HyperPreset::Paper, true)],
    }
}

/// Run the report (see the module docs).
pub fn run(args: &Args) -> BoxResult<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let (train_full, test, dir) = load_data(args)?;
    let (train_set, val_set) = data::split_off(&train_full, args.val_size)?;
    let (net, source) = load_backbone(args, &train_full, &test)?;
    let varmap = VarMap::new();
    let mut model = PMnist8::new(net, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    train::init_feedback(model.pnet(), args.seed)?;
    let feedback = obtain_feedback(args, &model, &train_set, &val_set)?;
    let base = eval::current_hyperparameters(model.pnet())?;
    let limit = if args.full { None } else { Some(args.eval_limit.unwrap_or(DEFAULT_IMAGES)) };
    let images = limit.map_or(test.len(), |l| l.min(test.len()));
    println!("report: {} threads, {images} test images, T = {}, model {source}, feedback {feedback}", rayon::current_num_threads(), args.timesteps);

    let mut noises = vec![Noise::Clean];
    noises.extend(args.sigmas.iter().map(|&s| Noise::Gaussian(s)));
    noises.extend(args.sp.iter().map(|&p| Noise::SaltPepper(p)));
    let config = |noises: Vec<Noise>| EvalConfig {
        timesteps: args.timesteps,
        batch_size: args.eval_batch,
        seed: args.seed,
        draws: args.noise_draws,
        noises,
        limit,
        pixel_range: (0.0, 1.0),
        progress: args.progress,
    };
    let mut sections = Vec::new();
    for (preset, alpha_zero) in configurations(args) {
        preset.apply(model.pnet_mut(), &base, alpha_zero)?;
        let label = preset.label(alpha_zero);
        let slug = label.replace(" α=0", "-alpha0");
        let mut pair = Vec::new();
        for (suite, conditions) in [("noise", noises.clone()), ("corruptions", Noise::corruptions())] {
            let mut r = eval::evaluate(&model, &test, &config(conditions))?;
            r.label = label.clone();
            println!("\n{suite} [{label}] ({:.1} s):\n{}{}", r.seconds, r.table(), r.corruption_table());
            r.write_files(&args.out, &format!("{suite}-{slug}"))?;
            pair.push((suite, format!("{suite}-{slug}"), r));
        }
        sections.push((label, pair));
    }
    base.iter().enumerate().try_for_each(|(i, &h)| model.pnet_mut().set_hyperparameters(i, h))?;

    let mut first = vec![0f32; 784];
    test.read_item(0, &mut first)?;
    let (grid, gh, gw) = corruptions::example_grid(&first, 28, 28, args.seed);
    write_gray_png(&args.out.join("corruptions-examples.png"), &grid, gh, gw, 6)?;

    let md = markdown(args, &dir, &source, &feedback, images, &sections, started.elapsed().as_secs_f64());
    let path = args.out.join("report.md");
    predify::common::write_atomic(&path, |f| std::io::Write::write_all(f, md.as_bytes()))?;
    println!("\nwrote {} ({:.1} s)", path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Load or train the feedback weights (see the module docs); returns where they came from.
fn obtain_feedback(args: &Args, model: &PMnist8, train_set: &impl Dataset, val_set: &impl Dataset) -> BoxResult<String> {
    let ckpt = args.out.join("checkpoint.safetensors");
    if let Some(f) = &args.feedback {
        load_feedback(model, f)?;
        return Ok(f.display().to_string());
    }
    if ckpt.exists() {
        load_feedback(model, &ckpt)?;
        return Ok(ckpt.display().to_string());
    }
    if args.epochs == 0 {
        return Ok(format!("random (seed {}, --epochs 0)", args.seed));
    }
    let t = Instant::now();
    let config = train_config(args, ckpt.clone())?;
    Trainer::new(model, config)?.fit(train_set, Some(val_set))?;
    println!("feedback training: {} epoch(s) in {:.1} s", args.epochs, t.elapsed().as_secs_f64());
    Ok(format!("trained here, {} epoch(s) ({})", args.epochs, ckpt.display()))
}

/// An 8-bit grayscale image as a PNG, each pixel drawn as a `scale × scale` block (plotters'
/// bitmap backend: no image crate needed).
fn write_gray_png(path: &Path, pixels: &[u8], h: usize, w: usize, scale: usize) -> BoxResult<()> {
    use plotters::prelude::*;
    {
        let root = BitMapBackend::new(path, ((w * scale) as u32, (h * scale) as u32)).into_drawing_area();
        for (i, &v) in pixels.iter().enumerate() {
            let (r, c) = ((i / w * scale) as i32, (i % w * scale) as i32);
            root.draw(&Rectangle::new([(c, r), (c + scale as i32, r + scale as i32)], RGBColor(v, v, v).filled()))?;
        }
        root.present()?;
    }
    Ok(())
}

/// One configuration's results: its label, then per suite (`noise`, `corruptions`) the suite's
/// name, the files' stem and the report.
type Section = (String, Vec<(&'static str, String, Report)>);

/// The Markdown report.
fn markdown(args: &Args, dir: &Path, source: &str, feedback: &str, images: usize, sections: &[Section], seconds: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Robustness report: PMnist8 on {}\n", args.dataset);
    let _ = writeln!(
        s,
        "{images} test images from `{}`, timesteps 0..={}, evaluation batch {}, seed {}{}; backbone `{source}`; feedback weights: {feedback}. \
         Written by `predify-mnist report` in {seconds:.0} s.\n",
        dir.display(),
        args.timesteps,
        args.eval_batch,
        args.seed,
        if args.noise_draws > 1 { format!(" ({} noise draws per image, seeds {}..={})", args.noise_draws, args.seed, args.seed.wrapping_add(args.noise_draws as u64 - 1)) } else { String::new() }
    );
    let _ = writeln!(
        s,
        "**Reading the tables.** Accuracy in percent; `ff` is the plain feedforward network (equal to t0). \
         Δ is the predified network's accuracy minus the plain network's on the same images, in points, with a {:.0}% percentile-bootstrap \
         interval over images ({} resamples); `n.s.` marks differences that are not significant (exact McNemar p ≥ {} or an interval \
         containing 0). Δbest picks the best timestep after looking, so its interval is optimistic; Δlast is the fair one. \
         The relative corruption error is the mean over corruptions of err(t) / err(ff): below 1, fewer errors than the plain network. \
         Every noise and corruption draw is keyed by (seed, condition, image), so the numbers do not depend on batch size or thread count. \
         Per-timestep differences, intervals and p-values are in the CSV and JSON files next to this report.\n",
        100.0 * eval::CONFIDENCE,
        eval::BOOTSTRAP_RESAMPLES,
        eval::SIGNIFICANCE
    );
    let _ = writeln!(s, "Configurations: `predify` = the network's own hyperparameters (Predify's defaults); `paper` = β 0.8, λ 0.1, α 0.01 for every pcoder; `α=0` = the same without the error term.\n");
    // The headline: the corruption summaries side by side.
    let _ = writeln!(
        s,
        "## Summary\n\n| configuration | clean Δlast | noises: Δlast (pts) | corruptions: mean accuracy ff → t{T} | corruptions: mean Δlast (pts) | relative corruption error at t{T} |\n|---|---|---|---|---|---|",
        T = args.timesteps
    );
    for (label, pair) in sections {
        let noise = &pair[0].2;
        let clean = noise.results.iter().find(|r| r.noise == Noise::Clean).and_then(|r| r.paired.last()).map(|p| p.display()).unwrap_or_default();
        // Each noise with its own interval: a plain mean over them would be an effect without one.
        let noisy: Vec<String> =
            noise.results.iter().filter(|r| r.noise != Noise::Clean).filter_map(|r| r.paired.last().map(|p| format!("{} {}", r.noise.label(), p.display()))).collect();
        let noisy = if noisy.is_empty() { String::from("–") } else { noisy.join("; ") };
        let (acc, (d, ce)) = match &pair[1].2.corruption_summary {
            Some(c) => (
                format!("{:.2} → {:.2}", 100.0 * c.feedforward, 100.0 * c.timesteps.last().copied().unwrap_or(f64::NAN)),
                c.display(c.timesteps.len().saturating_sub(1)).unwrap_or_default(),
            ),
            None => (String::new(), Default::default()),
        };
        let _ = writeln!(s, "| {label} | {clean} | {noisy} | {acc} | {d} | {ce} |");
    }
    let _ = writeln!(s);
    // What α = 0 changed: the error term can be small (with plain PCoders and Predify's batch
    // mean it is all but nothing at large batches), so the ablation may change little or
    // nothing; say so plainly rather than leave the reader to diff the tables.
    for (label, pair) in sections.iter().filter(|(l, _)| l.ends_with(" α=0")) {
        let Some((_, with)) = sections.iter().find(|(l, _)| format!("{l} α=0") == *label) else { continue };
        let (mut changed, mut total, mut largest) = (0usize, 0usize, 0f64);
        for ((_, _, a), (_, _, b)) in pair.iter().zip(with) {
            for (ra, rb) in a.results.iter().zip(&b.results) {
                for (x, y) in ra.timesteps.iter().zip(&rb.timesteps) {
                    total += 1;
                    if x != y {
                        changed += 1;
                        largest = largest.max((x - y).abs());
                    }
                }
            }
        }
        let base = label.trim_end_matches(" α=0");
        let _ = writeln!(
            s,
            "**The error term's share** (`{base}` against `{label}`): α = 0 changes {changed} of {total} accuracies (condition × timestep){}.\n",
            if changed == 0 { String::from(": the error term has no effect on any prediction") } else { format!(", by at most {:.2} points", 100.0 * largest) }
        );
    }
    for (label, pair) in sections {
        let _ = writeln!(s, "## Configuration `{label}`\n");
        for (suite, stem, r) in pair {
            let _ = writeln!(s, "### {suite}\n\n```text\n{}{}```\n", r.table(), if r.corruption_summary.is_some() { format!("\n{}", r.corruption_table()) } else { String::new() });
            let _ = writeln!(s, "![{suite}, {label}]({stem}.png)\n\nFiles: [{stem}.csv]({stem}.csv), [{stem}.json]({stem}.json); {:.0} s.\n", r.seconds);
        }
    }
    let names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
    let _ = writeln!(s, "## The corruptions\n\nThe first test image, clean, then MNIST-C's 15 corruptions in order (row by row): {}.\n\n![MNIST-C corruptions](corruptions-examples.png)", names.join(", "));
    s
}
