//! A sweep of attacks over ε, `T` and goals on a data set, and the transfer case.

use super::config::{AttackConfig, Goal, Method};
use super::perturb::{argmax_rows, perturb, predictions};
use super::report::{AttackReport, AttackRow, TransferRow};
use crate::common::{Error, Result, Rng};
use crate::data::{gather, Dataset};
use crate::eval::Paired;
use predify_runtime::chain::Segmented;
use predify_runtime::unroll::Semantics;
use candle_core::Device;
use std::time::Instant;

/// What [`run_suite`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteConfig {
    /// The budgets ε (in the input's units); an ε's index here keys its random starts.
    pub epsilons: Vec<f32>,
    /// The `T`s attacked (passes; the loss and the prediction read timestep `T − 1`).
    pub timesteps: Vec<usize>,
    /// The goals attacked.
    pub goals: Vec<Goal>,
    /// FGSM or BIM.
    pub method: Method,
    /// Start each attack from a uniform draw in the ε-ball.
    pub random_start: bool,
    /// How the error term is differentiated.
    pub semantics: Semantics,
    /// The image range `[lo, hi]`.
    pub range: (f32, f32),
    /// Also evaluate the plain network's (`T = 1`) adversarials at every timestep
    /// `0..max(timesteps)` of the predified network.
    pub transfer: bool,
    /// Images per batch (see the [module docs](super) on what the batch size may change).
    pub batch_size: usize,
    /// Attack the first `limit` images of the set only.
    pub limit: Option<usize>,
    /// Seed of the random starts.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        Self {
            epsilons: vec![0.05, 0.1, 0.15, 0.2, 0.3],
            timesteps: vec![1, 3, 5, 10],
            goals: vec![Goal::targeted(), Goal::Untargeted],
            method: Method::bim(10),
            random_start: true,
            semantics: Semantics::Predify,
            range: (0.0, 1.0),
            transfer: true,
            batch_size: 100,
            limit: Some(200),
            seed: 0,
            progress: false,
        }
    }
}

/// One (goal, ε, T) cell or one transfer (goal, ε, timestep) cell: counts, norms, and whether
/// the attack succeeded on each image (kept per image for the paired comparisons; the success
/// count is derived from it).
#[derive(Debug, Clone)]
struct Counts {
    clean_correct: usize,
    success_correct: usize,
    correct: usize,
    linf: f64,
    l2: f64,
    won: Vec<bool>,
}

impl Counts {
    fn new(images: usize) -> Self {
        Self { clean_correct: 0, success_correct: 0, correct: 0, linf: 0.0, l2: 0.0, won: vec![false; images] }
    }

    /// Count one batch whose first image is `first`.
    fn add(&mut self, goal: Goal, clean: &[usize], adv: &[usize], labels: &[usize], classes: usize, first: usize) {
        for (((&c, &a), &l), slot) in clean.iter().zip(adv).zip(labels).zip(&mut self.won[first..]) {
            let ok = c == l;
            let won = goal.succeeded(a, l, classes);
            *slot = won;
            self.clean_correct += ok as usize;
            self.success_correct += (ok && won) as usize;
            self.correct += (a == l) as usize;
        }
    }

    fn success(&self) -> usize {
        self.won.iter().filter(|&&w| w).count()
    }
}

fn frac(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Attack the first `config.limit` images of `set` with every goal, ε and `T` of `config`
/// (a fresh attack per cell, [`perturb`]) and evaluate each adversarial batch at its own
/// timestep `T − 1`; with `config.transfer`, evaluate the `T = 1` adversarials at every
/// timestep `0..max T` too (made once more if 1 is not among the `T`s).
pub fn run_suite<M, S>(model: &M, set: &S, config: &SuiteConfig) -> Result<AttackReport>
where
    M: Segmented + ?Sized,
    S: Dataset + ?Sized,
{
    let started = Instant::now();
    if config.batch_size == 0 || config.timesteps.contains(&0) || config.timesteps.is_empty() {
        return Err(Error::Config("an attack sweep needs a batch size ≥ 1 and timesteps T ≥ 1".into()));
    }
    let n = config.limit.map_or(set.len(), |l| l.min(set.len()));
    let t_max = config.timesteps.iter().copied().max().unwrap_or(1);
    let (ng, ne, nt) = (config.goals.len(), config.epsilons.len(), config.timesteps.len());
    let cell = |g: usize, e: usize, t: usize| (g * ne + e) * nt + t;
    let tcell = |g: usize, e: usize, t: usize| (g * ne + e) * t_max + t;
    let mut cells = vec![Counts::new(n); ng * ne * nt];
    let mut tcells = vec![Counts::new(n); if config.transfer { ng * ne * t_max } else { 0 }];
    let plain_in_sweep = config.timesteps.contains(&1);
    let batches = n.div_ceil(config.batch_size);
    let per_batch = ng * ne * (nt + usize::from(config.transfer && !plain_in_sweep));
    let bar = crate::common::progress::progress_bar(config.progress, (batches * per_batch) as u64, "attack".into());
    let device = Device::Cpu;
    let mut classes;
    for b in 0..batches {
        let ids: Vec<usize> = (b * config.batch_size..((b + 1) * config.batch_size).min(n)).collect();
        let first = ids[0];
        let (x, labels) = gather(set, &ids, &device)?;
        let labels: Vec<usize> = labels.into_iter().map(|l| l as usize).collect();
        let (clean_logits, _) = model.run(&x, t_max)?;
        classes = clean_logits[0].dim(1)?;
        let clean = clean_logits.iter().map(argmax_rows).collect::<Result<Vec<_>>>()?;
        let clean_vals: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let per = clean_vals.len() / ids.len();
        for (gi, &goal) in config.goals.iter().enumerate() {
            for (ei, &eps) in config.epsilons.iter().enumerate() {
                let attack = |timesteps: usize| {
                    let c = AttackConfig {
                        eps,
                        eps_index: ei,
                        method: config.method,
                        goal,
                        random_start: config.random_start,
                        timesteps,
                        semantics: config.semantics,
                        range: config.range,
                        seed: config.seed,
                    };
                    perturb(model, &x, &labels, &ids, &c)
                };
                let mut transfer_done = false;
                for (ti, &t) in config.timesteps.iter().enumerate() {
                    let adv = attack(t)?;
                    let transfer_here = config.transfer && t == 1 && !transfer_done;
                    let preds = predictions(model, &adv, if transfer_here { t_max } else { t })?;
                    let c = &mut cells[cell(gi, ei, ti)];
                    c.add(goal, &clean[t - 1], &preds[t - 1], &labels, classes, first);
                    let adv_vals: Vec<f32> = adv.flatten_all()?.to_vec1()?;
                    for (a, o) in adv_vals.chunks_exact(per).zip(clean_vals.chunks_exact(per)) {
                        let (mut linf, mut l2) = (0f64, 0f64);
                        for (&p, &q) in a.iter().zip(o) {
                            let d = (p - q).abs() as f64;
                            linf = linf.max(d);
                            l2 += d * d;
                        }
                        c.linf += linf;
                        c.l2 += l2.sqrt();
                    }
                    if transfer_here {
                        for s in 0..t_max {
                            tcells[tcell(gi, ei, s)].add(goal, &clean[s], &preds[s], &labels, classes, first);
                        }
                        transfer_done = true;
                    }
                    bar.inc(1);
                }
                if config.transfer && !transfer_done {
                    let adv = attack(1)?;
                    let preds = predictions(model, &adv, t_max)?;
                    for s in 0..t_max {
                        tcells[tcell(gi, ei, s)].add(goal, &clean[s], &preds[s], &labels, classes, first);
                    }
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
    let mut rows = Vec::with_capacity(cells.len());
    let mut transfer = Vec::with_capacity(tcells.len());
    for (gi, &goal) in config.goals.iter().enumerate() {
        for (ei, &eps) in config.epsilons.iter().enumerate() {
            // Every T against the sweep's first T on the same images; each comparison
            // bootstraps from its own generator, keyed by (goal, ε, T).
            let versus = |first: &[bool], this: &[bool], what: &str, t: usize| {
                let mut rng = Rng::derive(config.seed, &format!("attack-bootstrap/{what}/{}/{ei}", goal.label()), t as u64);
                Paired::from_outcomes(first, this, &mut rng)
            };
            for (ti, &t) in config.timesteps.iter().enumerate() {
                let c = &cells[cell(gi, ei, ti)];
                let vs_first = versus(&cells[cell(gi, ei, 0)].won, &c.won, "sweep", t)?;
                rows.push(AttackRow {
                    goal,
                    eps,
                    timesteps: t,
                    images: n,
                    clean_accuracy: frac(c.clean_correct, n),
                    success_rate: frac(c.success(), n),
                    success_rate_correct: frac(c.success_correct, c.clean_correct),
                    accuracy: frac(c.correct, n),
                    mean_linf: if n == 0 { 0.0 } else { c.linf / n as f64 },
                    mean_l2: if n == 0 { 0.0 } else { c.l2 / n as f64 },
                    vs_first: Some(vs_first),
                });
            }
            if config.transfer {
                for s in 0..t_max {
                    let c = &tcells[tcell(gi, ei, s)];
                    let vs_plain = versus(&tcells[tcell(gi, ei, 0)].won, &c.won, "transfer", s)?;
                    transfer.push(TransferRow {
                        goal,
                        eps,
                        timestep: s,
                        clean_accuracy: frac(c.clean_correct, n),
                        success_rate: frac(c.success(), n),
                        success_rate_correct: frac(c.success_correct, c.clean_correct),
                        accuracy: frac(c.correct, n),
                        vs_plain: Some(vs_plain),
                    });
                }
            }
        }
    }
    Ok(AttackReport {
        network: model.pnet().name().to_string(),
        images: n,
        method: config.method,
        random_start: config.random_start,
        semantics: format!("{:?}", config.semantics),
        range: config.range,
        seed: config.seed,
        batch_size: config.batch_size,
        epsilons: config.epsilons.clone(),
        timesteps: config.timesteps.clone(),
        transfer_timesteps: if config.transfer { t_max } else { 0 },
        rows,
        transfer,
        seconds: started.elapsed().as_secs_f64(),
    })
}
