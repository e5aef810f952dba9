//! The progress bar of the long-running loops (training epochs, evaluation, tuning).

/// A progress bar on stderr (hidden when `show` is false or stderr is not a terminal).
pub(crate) fn progress_bar(show: bool, len: u64, prefix: String) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar
}
