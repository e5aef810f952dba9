//! Writing specs back out: PyTorch syntax for predictors (as PyTorch's `repr`, plus
//! `align_corners` when set) and Predify TOML for whole specs. Parsing the output gives
//! back an equal value.

use std::fmt::{self, Display, Write as _};

use crate::types::{AxisValues, ConvSpec, Hyperparameters, Layer, Predictor, Spec, UpsampleMode};

/// Python's spelling of a per-axis tuple: `(5, 5)`.
struct Tuple<'a, T>(&'a [T]);

impl<T: fmt::Debug> Display for Tuple<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            // Debug: `5` for ints, `2.0` (not `2`) for floats, like Python's repr.
            write!(f, "{v:?}")?;
        }
        if self.0.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

impl<T: fmt::Debug> Display for AxisValues<T> {
    /// `2.0` or `(2.0, 1.5)`, as Python's repr.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxisValues::Uniform(v) => write!(f, "{v:?}"),
            AxisValues::PerAxis(vs) => write!(f, "{}", Tuple(vs)),
        }
    }
}

fn conv_args(f: &mut fmt::Formatter<'_>, c: &ConvSpec) -> fmt::Result {
    // PyTorch's `_ConvNd.extra_repr`: non-default values only, kernel and stride always.
    write!(
        f,
        "{}, {}, kernel_size={}, stride={}",
        c.in_channels,
        c.out_channels,
        Tuple(&c.kernel_size),
        Tuple(&c.stride)
    )?;
    if c.padding.iter().any(|&p| p != 0) {
        write!(f, ", padding={}", Tuple(&c.padding))?;
    }
    if c.dilation.iter().any(|&d| d != 1) {
        write!(f, ", dilation={}", Tuple(&c.dilation))?;
    }
    if c.output_padding.iter().any(|&p| p != 0) {
        write!(f, ", output_padding={}", Tuple(&c.output_padding))?;
    }
    if c.groups != 1 {
        write!(f, ", groups={}", c.groups)?;
    }
    if !c.bias {
        f.write_str(", bias=False")?;
    }
    Ok(())
}

impl Display for UpsampleMode {
    /// `nearest`, `bilinear` or `trilinear`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpsampleMode::Nearest => "nearest",
            UpsampleMode::Bilinear => "bilinear",
            UpsampleMode::Trilinear => "trilinear",
        })
    }
}

impl Display for Layer {
    /// PyTorch's repr, e.g. `ConvTranspose2d(64, 3, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.type_name())?;
        match self {
            Layer::ConvTranspose(c) | Layer::Conv(c) => conv_args(f, c)?,
            Layer::ReLU { inplace: true } => f.write_str("inplace=True")?,
            Layer::ReLU { inplace: false } => {}
            Layer::Upsample(u) => {
                match (&u.scale_factor, &u.size) {
                    (Some(s), _) => write!(f, "scale_factor={s}")?,
                    (None, Some(s)) => write!(f, "size={s}")?,
                    (None, None) => f.write_str("size=None")?,
                }
                write!(f, ", mode='{}'", u.mode)?;
                match u.align_corners {
                    Some(true) => f.write_str(", align_corners=True")?,
                    Some(false) => f.write_str(", align_corners=False")?,
                    None => {}
                }
            }
        }
        f.write_str(")")
    }
}

impl Display for Predictor {
    /// The layer, or `Sequential(layer, ...)` on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predictor::Single(layer) => write!(f, "{layer}"),
            Predictor::Sequential(layers) => {
                f.write_str("Sequential(")?;
                for (i, layer) in layers.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{layer}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML float that reads back as exactly `x` after the f64 → f32 conversion validation
/// does: the short f32 spelling when that survives the double rounding, else the exact one.
fn toml_f32(x: f32) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    let short = format!("{x:?}");
    match short.parse::<f64>() {
        Ok(v) if v as f32 == x => short,
        _ => format!("{:?}", f64::from(x)),
    }
}

fn hyperparameters(h: &Hyperparameters) -> String {
    format!(
        "{{feedforward = {}, feedback = {}, pc = {}}}",
        toml_f32(h.feedforward),
        toml_f32(h.feedback),
        toml_f32(h.pc)
    )
}

impl Spec {
    /// The spec as a Predify TOML config; [`Spec::from_toml_str`] reads it back equal.
    pub fn to_toml_string(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "name = {}", toml_string(&self.name));
        if !self.imports.is_empty() {
            let items: Vec<String> = self.imports.iter().map(|s| toml_string(s)).collect();
            let _ = writeln!(out, "imports = [{}]", items.join(", "));
        }
        let _ = writeln!(out, "gradient_scaling = {}", self.gradient_scaling);
        let _ = writeln!(out, "shared_hyperparameters = {}", self.shared_hyperparameters);
        if self.error_scaling != crate::types::ErrorScaling::BatchMean {
            let _ = writeln!(out, "error_scaling = {}", toml_string(self.error_scaling.name()));
        }
        let sizes: Vec<String> = self.input_size.iter().map(usize::to_string).collect();
        let _ = writeln!(out, "input_size = [{}]", sizes.join(", "));
        for p in &self.pcoders {
            let _ = writeln!(out, "\n[[pcoders]]");
            let _ = writeln!(out, "module = {}", toml_string(&p.module.to_string()));
            if let Some(pred) = &p.predictor {
                let _ = writeln!(out, "predictor = {}", toml_string(&pred.to_string()));
            }
            let _ = writeln!(out, "hyperparameters = {}", hyperparameters(&p.hyperparameters));
        }
        out
    }
}
