//! A report's files: the CSVs, the JSON and the PNG plot, each written atomically. Apart from
//! the report type so that the plot module, which reads a report, and the report do not use
//! each other.

use super::report::AttackReport;
use crate::common::{write_atomic, Error, Result};
use std::path::{Path, PathBuf};

impl AttackReport {
    /// Write `{stem}.csv`, `{stem}-transfer.csv` (when there is a transfer evaluation),
    /// `{stem}.json` and `{stem}.png` into `dir`, each atomically.
    pub fn write_files(&self, dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
        use std::io::Write;
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        let mut files = Vec::new();
        let csv = dir.join(format!("{stem}.csv"));
        write_atomic(&csv, |f| f.write_all(self.to_csv().as_bytes()))?;
        files.push(csv);
        if !self.transfer.is_empty() {
            let tcsv = dir.join(format!("{stem}-transfer.csv"));
            write_atomic(&tcsv, |f| f.write_all(self.transfer_csv().as_bytes()))?;
            files.push(tcsv);
        }
        let json = dir.join(format!("{stem}.json"));
        write_atomic(&json, |f| f.write_all(self.to_json().as_bytes()))?;
        files.push(json);
        let png = dir.join(format!("{stem}.png"));
        self.plot(&png)?;
        files.push(png);
        Ok(files)
    }

    /// Plot success rate (over all images) versus ε: one panel per goal with a line per `T`,
    /// and one per goal for the transfer case with a line per timestep `T − 1`; PNG at `path`.
    pub fn plot(&self, path: &Path) -> Result<()> {
        super::plot::success_vs_eps(self, path)
    }
}
