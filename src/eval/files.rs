//! A report's files: CSV, JSON and the PNG plot, each written atomically. Apart from the report
//! type so that the plot module, which reads a report, and the report do not use each other.

use super::Report;
use crate::common::{write_atomic, Error, Result};
use std::path::Path;

impl Report {
    /// Write `{stem}.csv`, `{stem}.json` and `{stem}.png` into `dir` (atomically each), and
    /// `{stem}-summary.csv` ([`Report::summary_csv`]) when the report has corruptions.
    pub fn write_files(&self, dir: &Path, stem: &str) -> Result<Vec<std::path::PathBuf>> {
        use std::io::Write;
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        let csv = dir.join(format!("{stem}.csv"));
        write_atomic(&csv, |f| f.write_all(self.to_csv().as_bytes()))?;
        let json = dir.join(format!("{stem}.json"));
        write_atomic(&json, |f| f.write_all(self.to_json().as_bytes()))?;
        let png = dir.join(format!("{stem}.png"));
        self.plot(&png)?;
        let mut files = vec![csv, json, png];
        if self.corruption_summary.is_some() {
            let summary = dir.join(format!("{stem}-summary.csv"));
            write_atomic(&summary, |f| f.write_all(self.summary_csv().as_bytes()))?;
            files.push(summary);
        }
        Ok(files)
    }

    /// Plot accuracy versus timestep: one panel per condition (its own accuracy scale), the
    /// plain feedforward network's accuracy as a dashed line; PNG at `path`.
    pub fn plot(&self, path: &Path) -> Result<()> {
        super::plot::accuracy_vs_timestep(self, path)
    }
}
