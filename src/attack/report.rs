//! The result of an attack sweep: rows per (goal, ε, T) and the transfer rows, printed as
//! tables and written as CSV, JSON and a PNG plot.

use super::config::{Goal, Method};
use crate::eval::Paired;

/// One (goal, ε, T) cell of an attack sweep. Rates are fractions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttackRow {
    /// The goal.
    pub goal: Goal,
    /// The budget ε.
    pub eps: f32,
    /// `T` (passes); the loss and the prediction read timestep `T − 1`.
    pub timesteps: usize,
    /// Images attacked.
    pub images: usize,
    /// Accuracy on the clean images at timestep `T − 1`.
    pub clean_accuracy: f64,
    /// Success rate over all images (targeted: predicted == target; untargeted: predicted ≠
    /// label, so an image already misclassified counts as a success).
    pub success_rate: f64,
    /// Success rate over the images classified correctly when clean (at timestep `T − 1`).
    pub success_rate_correct: f64,
    /// Accuracy on the adversarial images at timestep `T − 1`.
    pub accuracy: f64,
    /// Mean over images of the perturbation's L∞ norm.
    pub mean_linf: f64,
    /// Mean over images of the perturbation's L2 norm.
    pub mean_l2: f64,
    /// The success rate against the sweep's first `T` (same goal and ε) on the same images:
    /// difference, paired bootstrap interval and McNemar p ([`Paired`]; its "feedforward" side
    /// is the first `T`, `None` in reports written before it existed).
    #[serde(default)]
    pub vs_first: Option<Paired>,
}

/// The plain network's (`T = 1`) adversarials evaluated at one timestep of the predified one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransferRow {
    /// The goal the adversarials were made for.
    pub goal: Goal,
    /// The budget ε.
    pub eps: f32,
    /// The timestep evaluated (0 = the feedforward pass the adversarials were made on).
    pub timestep: usize,
    /// Accuracy on the clean images at this timestep.
    pub clean_accuracy: f64,
    /// Success rate over all images.
    pub success_rate: f64,
    /// Success rate over the images this timestep classifies correctly when clean.
    pub success_rate_correct: f64,
    /// Accuracy on the adversarial images at this timestep.
    pub accuracy: f64,
    /// The success rate against timestep 0 (the network the adversarials were made on) on the
    /// same images ([`Paired`]; `None` in reports written before it existed).
    #[serde(default)]
    pub vs_plain: Option<Paired>,
}

/// The result of [`super::run_suite`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttackReport {
    /// The predified network's name.
    pub network: String,
    /// Images attacked per cell.
    pub images: usize,
    /// The attack method.
    pub method: Method,
    /// Whether attacks started from a random point of the ε-ball.
    pub random_start: bool,
    /// The semantics of the gradient through the error term (`Predify` or `Exact`).
    pub semantics: String,
    /// The image range.
    pub range: (f32, f32),
    /// Seed of the random starts.
    pub seed: u64,
    /// Batch size used.
    pub batch_size: usize,
    /// The budgets, in sweep order.
    pub epsilons: Vec<f32>,
    /// The `T`s attacked.
    pub timesteps: Vec<usize>,
    /// Timesteps `0..transfer_timesteps` of the transfer evaluation (0: none).
    pub transfer_timesteps: usize,
    /// One row per (goal, ε, T), goals outermost, then ε, then `T`.
    pub rows: Vec<AttackRow>,
    /// One row per (goal, ε, timestep), in the same order.
    pub transfer: Vec<TransferRow>,
    /// Wall time, seconds.
    pub seconds: f64,
}

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

impl AttackReport {
    /// The goals of the report, in order of first appearance.
    pub fn goals(&self) -> Vec<Goal> {
        let mut g: Vec<Goal> = Vec::new();
        for r in &self.rows {
            if !g.contains(&r.goal) {
                g.push(r.goal);
            }
        }
        g
    }

    /// The attack tables, one per goal: a row per (ε, T) with the clean accuracy, the success
    /// rate over all images and over the clean-correct ones, the accuracy under attack and the
    /// mean perturbation norms (percentages except the norms).
    pub fn table(&self) -> String {
        let mut s = format!(
            "{}: {} images, {}{}, loss on the last timestep's logits ({} semantics), range [{}, {}], seed {}, batch {}\n",
            self.network,
            self.images,
            self.method.label(),
            if self.random_start { ", random start" } else { "" },
            self.semantics,
            self.range.0,
            self.range.1,
            self.seed,
            self.batch_size
        );
        for goal in self.goals() {
            let what = match goal {
                Goal::Untargeted => "success = predicted ≠ label".to_string(),
                Goal::Targeted { shift } => format!("success = predicted == (label + {shift}) mod classes"),
            };
            s.push_str(&format!("\n{} ({what}; T = passes, read at timestep T−1; all in %, norms absolute)\n", goal.label()));
            let first = self.timesteps.first().copied().unwrap_or(1);
            s.push_str(&format!(
                "{:>6} {:>3} {:>7} {:>9} {:>11} {:>8} {:>7} {:>7}  Δsucc.all vs T={first}, 95% CI\n",
                "eps", "T", "clean", "succ.all", "succ.clean✓", "acc.adv", "L∞", "L2"
            ));
            for r in self.rows.iter().filter(|r| r.goal == goal) {
                let vs = r.vs_first.as_ref().filter(|_| r.timesteps != first).map(Paired::display).unwrap_or_default();
                let row = format!(
                    "{:>6} {:>3} {:>7} {:>9} {:>11} {:>8} {:>7.4} {:>7.3}  {vs}",
                    format!("{:.3}", r.eps),
                    r.timesteps,
                    pct(r.clean_accuracy),
                    pct(r.success_rate),
                    pct(r.success_rate_correct),
                    pct(r.accuracy),
                    r.mean_linf,
                    r.mean_l2
                );
                s.push_str(row.trim_end());
                s.push('\n');
            }
        }
        s
    }

    /// The transfer tables, one per goal: a row per ε, a column per timestep, each cell
    /// `success over all images / accuracy` in percent (empty if there was no transfer).
    pub fn transfer_table(&self) -> String {
        if self.transfer.is_empty() {
            return String::new();
        }
        let mut s = format!(
            "{}: transfer of the plain network's (T = 1) adversarials to timesteps 0..={} ({} images; cells: success over all images / accuracy, %)\n",
            self.network,
            self.transfer_timesteps.saturating_sub(1),
            self.images
        );
        for goal in self.goals() {
            let last = self.transfer_timesteps.saturating_sub(1);
            s.push_str(&format!("\n{}\n{:>6}", goal.label(), "eps"));
            for t in 0..self.transfer_timesteps {
                s.push_str(&format!(" {:>11}", format!("t{t}")));
            }
            s.push_str(&format!("  Δsucc.all t{last} vs t0, 95% CI\n"));
            for &eps in &self.epsilons {
                s.push_str(&format!("{:>6}", format!("{eps:.3}")));
                let cells: Vec<&TransferRow> = self.transfer.iter().filter(|r| r.goal == goal && r.eps == eps).collect();
                for r in &cells {
                    s.push_str(&format!(" {:>11}", format!("{}/{}", pct(r.success_rate), pct(r.accuracy))));
                }
                let vs = cells.last().and_then(|r| r.vs_plain.as_ref()).filter(|_| last > 0).map(Paired::display).unwrap_or_default();
                s.push_str(format!("  {vs}").trim_end());
                s.push('\n');
            }
        }
        s
    }

    /// CSV of the attack rows:
    /// `goal,eps,T,images,clean_accuracy,success_rate,success_rate_correct,accuracy,mean_linf,mean_l2,diff_vs_first,ci_lo,ci_hi,p`
    /// (the last four: [`AttackRow::vs_first`], empty when absent).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("goal,eps,T,images,clean_accuracy,success_rate,success_rate_correct,accuracy,mean_linf,mean_l2,diff_vs_first,ci_lo,ci_hi,p\n");
        for r in &self.rows {
            s.push_str(&format!(
                "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{}\n",
                r.goal.label(),
                r.eps,
                r.timesteps,
                r.images,
                r.clean_accuracy,
                r.success_rate,
                r.success_rate_correct,
                r.accuracy,
                r.mean_linf,
                r.mean_l2,
                paired_csv(r.vs_first.as_ref())
            ));
        }
        s
    }

    /// CSV of the transfer rows:
    /// `goal,eps,timestep,clean_accuracy,success_rate,success_rate_correct,accuracy,diff_vs_t0,ci_lo,ci_hi,p`
    /// (the last four: [`TransferRow::vs_plain`], empty when absent).
    pub fn transfer_csv(&self) -> String {
        let mut s = String::from("goal,eps,timestep,clean_accuracy,success_rate,success_rate_correct,accuracy,diff_vs_t0,ci_lo,ci_hi,p\n");
        for r in &self.transfer {
            s.push_str(&format!(
                "{},{},{},{:.6},{:.6},{:.6},{:.6},{}\n",
                r.goal.label(),
                r.eps,
                r.timestep,
                r.clean_accuracy,
                r.success_rate,
                r.success_rate_correct,
                r.accuracy,
                paired_csv(r.vs_plain.as_ref())
            ));
        }
        s
    }

    /// The whole report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// `diff,ci_lo,ci_hi,p` of a paired comparison, or four empty fields.
fn paired_csv(p: Option<&Paired>) -> String {
    p.map_or(String::from(",,,"), |p| format!("{:.6},{:.6},{:.6},{:.6e}", p.diff, p.ci_lo, p.ci_hi, p.p))
}
