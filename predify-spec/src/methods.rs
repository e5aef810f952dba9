//! Convenience methods on the typed spec.

use crate::types::{AxisValues, Hyperparameters, Layer, Predictor, Spec, UpsampleMode};

impl Spec {
    /// Whether the network is 3-D (`input_size = [C, D, H, W]`).
    pub fn is_3d(&self) -> bool {
        self.input_size.len() == 4
    }

    /// Number of spatial axes of the input: 2 for `[C, H, W]`, 3 for `[C, D, H, W]`.
    pub fn spatial_dims(&self) -> usize {
        self.input_size.len().saturating_sub(1)
    }

    /// The β/λ/α used by pcoder `i` (0-based): its own, or pcoder 0's when
    /// `shared_hyperparameters` is set, as in Predify.
    ///
    /// # Panics
    /// If `i` is not a pcoder index (`i >= pcoders.len()`).
    pub fn hyperparameters(&self, i: usize) -> Hyperparameters {
        let i = if self.shared_hyperparameters { 0 } else { i };
        match self.pcoders.get(i) {
            Some(p) => p.hyperparameters,
            None => panic!("pcoder index {i} out of range ({} pcoders)", self.pcoders.len()),
        }
    }
}

impl Hyperparameters {
    /// The memory weight `1 − β − λ`, computed in f32 in Predify's order.
    pub fn memory(self) -> f32 {
        (1.0f32 - self.feedforward) - self.feedback
    }
}

impl Predictor {
    /// The layers in order (one for [`Predictor::Single`]).
    pub fn layers(&self) -> &[Layer] {
        match self {
            Predictor::Single(layer) => std::slice::from_ref(layer),
            Predictor::Sequential(layers) => layers,
        }
    }

    /// Prefix of layer `j`'s parameter names inside the pcoder: `pmodule` for a single
    /// module, `pmodule.{j}` inside a Sequential (PyTorch's state-dict naming).
    pub fn param_prefix(&self, j: usize) -> String {
        match self {
            Predictor::Single(_) => "pmodule".to_string(),
            Predictor::Sequential(_) => format!("pmodule.{j}"),
        }
    }

    /// Channels the predictor takes: the first convolution's `in_channels` (`None` when
    /// it has no convolution, i.e. it keeps channels unchanged).
    pub fn in_channels(&self) -> Option<usize> {
        self.layers().iter().find_map(Layer::channels).map(|(i, _)| i)
    }

    /// Channels the predictor produces: the last convolution's `out_channels`.
    pub fn out_channels(&self) -> Option<usize> {
        self.layers().iter().rev().find_map(Layer::channels).map(|(_, o)| o)
    }
}

impl Layer {
    /// Whether the layer has trainable parameters (weights, and bias if enabled).
    pub fn has_params(&self) -> bool {
        matches!(self, Layer::Conv(_) | Layer::ConvTranspose(_))
    }

    /// `(in_channels, out_channels)` of a convolution; `None` for layers that keep channels.
    pub fn channels(&self) -> Option<(usize, usize)> {
        match self {
            Layer::Conv(c) | Layer::ConvTranspose(c) => Some((c.in_channels, c.out_channels)),
            Layer::ReLU { .. } | Layer::Upsample(_) => None,
        }
    }

    /// Spatial axes the layer requires, if it fixes them: convolutions by type, `Upsample`
    /// by its interpolating mode or per-axis values; `None` when any number works.
    pub fn spatial_dims(&self) -> Option<usize> {
        match self {
            Layer::Conv(c) | Layer::ConvTranspose(c) => Some(c.dims),
            Layer::ReLU { .. } => None,
            Layer::Upsample(u) => match u.mode {
                UpsampleMode::Bilinear => Some(2),
                UpsampleMode::Trilinear => Some(3),
                UpsampleMode::Nearest => u
                    .size
                    .as_ref()
                    .and_then(AxisValues::per_axis_len)
                    .or_else(|| u.scale_factor.as_ref().and_then(AxisValues::per_axis_len)),
            },
        }
    }

    /// PyTorch's class name: `ConvTranspose2d`, `Conv3d`, `ReLU`, `Upsample`.
    pub fn type_name(&self) -> String {
        match self {
            Layer::ConvTranspose(c) => format!("ConvTranspose{}d", c.dims),
            Layer::Conv(c) => format!("Conv{}d", c.dims),
            Layer::ReLU { .. } => "ReLU".to_string(),
            Layer::Upsample(_) => "Upsample".to_string(),
        }
    }
}

impl<T> AxisValues<T> {
    /// The number of values of a per-axis list; `None` for a uniform value.
    pub fn per_axis_len(&self) -> Option<usize> {
        match self {
            AxisValues::Uniform(_) => None,
            AxisValues::PerAxis(v) => Some(v.len()),
        }
    }
}
