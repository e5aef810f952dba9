//! Code generation: the predified type and its methods.
//!
//! Everything generated refers to other crates by absolute paths (`::predify::...`,
//! `::core::...`, `::std::...`) and every local name starts with `__predify_`, so the code
//! means the same wherever the struct is and whatever the user has in scope.

use predify_spec::Spec;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};

use crate::check::Target;
use crate::model::{Field, FieldKind, Model};

/// Where the spec's text comes from.
pub(crate) enum SpecText {
    /// Written inline: the spec rendered as TOML.
    Inline(String),
    /// A file, as written in `spec = "..."` (relative to `CARGO_MANIFEST_DIR` unless absolute).
    File(String),
}

/// `include_str!` of the spec file, resolved in the annotated crate like the macro resolved
/// it; including the file makes Cargo rebuild the crate when it changes.
pub(crate) fn include_file(path: &str) -> TokenStream {
    if std::path::Path::new(path).is_absolute() {
        quote!(::core::include_str!(#path))
    } else {
        let rel = format!("/{}", path.trim_start_matches("./"));
        quote!(::core::include_str!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), #rel)))
    }
}

/// `text` as a raw string literal (`r#"..."#`), which keeps a multi-line spec readable in the
/// expansion.
fn raw_string(text: &str) -> TokenStream {
    let mut hashes = String::from("#");
    while text.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    match format!("r{hashes}\"{text}\"{hashes}").parse::<Literal>() {
        Ok(lit) => quote!(#lit),
        Err(_) => quote!(#text),
    }
}

fn usize_lit(n: usize) -> Literal {
    Literal::usize_suffixed(n)
}

/// The call of one layer on `__predify_h` (method syntax, so `Box<dyn Module>` works).
fn layer_call(field: &Field, layer: TokenStream) -> TokenStream {
    if field.module_t {
        quote!(__predify_h = #layer.forward_t(&__predify_h, false)?;)
    } else {
        quote!(__predify_h = #layer.forward(&__predify_h)?;)
    }
}

/// The statements of one backbone pass, with `__predify_hook(i, h)` at pcoder `i`'s point.
fn traversal(model: &Model, targets: &[Target]) -> Vec<TokenStream> {
    let mut stmts = Vec::new();
    let fire = |k: usize| {
        let k = usize_lit(k);
        quote!(__predify_h = __predify_hook(#k, __predify_h)?;)
    };
    for (fi, field) in model.fields.iter().enumerate() {
        if field.skip {
            continue;
        }
        let ident = &field.ident;
        let whole: Vec<usize> = targets.iter().enumerate().filter(|(_, t)| **t == Target::Field(fi)).map(|(k, _)| k).collect();
        match field.kind {
            FieldKind::Single => {
                stmts.push(layer_call(field, quote!(__predify_backbone.#ident)));
            }
            FieldKind::Vec | FieldKind::Array(_) => {
                let elements: Vec<(usize, usize)> = targets
                    .iter()
                    .enumerate()
                    .filter_map(|(k, t)| match t {
                        Target::Element(f, j) if *f == fi => Some((k, *j)),
                        _ => None,
                    })
                    .collect();
                let call = layer_call(field, quote!(__predify_layer));
                let mut start: Option<usize> = None;
                for (k, j) in elements {
                    let end = usize_lit(j);
                    let range = match start {
                        None => quote!(..=#end),
                        Some(s) => {
                            let s = usize_lit(s);
                            quote!(#s..=#end)
                        }
                    };
                    stmts.push(quote! {
                        for __predify_layer in __predify_backbone.#ident[#range].iter() {
                            #call
                        }
                    });
                    stmts.push(fire(k));
                    start = Some(j + 1);
                }
                let rest = match start {
                    None => quote!(__predify_backbone.#ident.iter()),
                    Some(s) => {
                        let s = usize_lit(s);
                        quote!(__predify_backbone.#ident[#s..].iter())
                    }
                };
                stmts.push(quote! {
                    for __predify_layer in #rest {
                        #call
                    }
                });
            }
        }
        for k in whole {
            stmts.push(fire(k));
        }
    }
    stmts
}

/// Run-time checks of element indices that the compiler cannot see (`Vec` fields, arrays whose
/// length is not a literal).
fn index_checks(model: &Model, spec: &Spec, targets: &[Target]) -> Vec<TokenStream> {
    let struct_name = model.item.ident.to_string();
    targets
        .iter()
        .enumerate()
        .filter_map(|(k, t)| {
            let Target::Element(f, j) = *t else { return None };
            let field = &model.fields[f];
            if matches!(field.kind, FieldKind::Array(Some(_))) {
                return None;
            }
            let ident = &field.ident;
            let message = format!(
                "{{}}: pcoder {} attaches at `{}`, but field `{}` of `{}` has {{}} layers",
                k + 1,
                spec.pcoders[k].module,
                ident,
                struct_name
            );
            let j = usize_lit(j);
            Some(quote! {
                {
                    let __predify_len = __predify_backbone.#ident.len();
                    if __predify_len <= #j {
                        return ::core::result::Result::Err(::predify::runtime::Error::Usage(
                            ::std::format!(#message, Self::NAME, __predify_len),
                        ));
                    }
                }
            })
        })
        .collect()
}

/// A Markdown table of the pcoders, for the generated type's documentation.
fn pcoder_table(spec: &Spec) -> String {
    let mut s = String::from("| pcoder | fires after | predictor (`pmodule`) | feedforward β | feedback λ | pc α |\n|---|---|---|---|---|---|\n");
    for (i, p) in spec.pcoders.iter().enumerate() {
        let h = spec.hyperparameters(i);
        let pred = match &p.predictor {
            Some(p) => format!("`{p}`"),
            None => "default (bilinear upsample where the size changes + `ConvTranspose` 3×3, from the probed shapes)".to_string(),
        };
        s.push_str(&format!("| {} | `{}` | {} | {} | {} | {} |\n", i + 1, p.module, pred, h.feedforward, h.feedback, h.pc));
    }
    s
}

/// The predified type for `model` and `spec` (valid and checked: `targets[i]` is where pcoder
/// `i` fires).
pub(crate) fn generate(model: &Model, spec: &Spec, targets: &[Target], text: &SpecText) -> TokenStream {
    let backbone_ty = &model.item.ident;
    let vis = &model.item.vis;
    let name = format_ident!("{}", spec.name, span = Span::call_site());
    let name_str = &spec.name;
    let n = spec.pcoders.len();
    let n_lit = usize_lit(n);
    let attach: Vec<String> = spec.pcoders.iter().map(|p| p.module.to_string()).collect();
    let input_size: Vec<Literal> = spec.input_size.iter().map(|&d| usize_lit(d)).collect();

    let (spec_toml, origin) = match text {
        SpecText::Inline(toml) => (raw_string(toml), "the inline `#[predify(...)]` attribute".to_string()),
        SpecText::File(path) => (include_file(path), format!("`{path}`")),
    };

    let stmts = traversal(model, targets);
    let checks = index_checks(model, spec, targets);

    let type_doc = format!(
        "Predified [`{backbone_ty}`]: the backbone with {n} PCoder{} (Predify's predictive coding), generated by \
         `#[predify]` from {origin}.\n\n\
         Input: `[N, {}]`; gradient scaling (PCoderN): {}; shared hyperparameters: {}.\n\n{}\n\
         Build it with [`{name_str}::new`], then run timesteps with [`{name_str}::run`] or \
         [`{name_str}::new_state`] + [`{name_str}::step`]. The backbone's fields run in declaration order; \
         each pcoder's representation replaces the output of the layer it follows.",
        if n == 1 { "" } else { "s" },
        spec.input_size.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        spec.gradient_scaling,
        spec.shared_hyperparameters,
        pcoder_table(spec),
    );
    let spec_toml_doc = format!("The spec as Predify TOML (from {origin}).");
    let attach_doc = "Where each pcoder fires, in pcoder order (Predify's `module` paths, e.g. `features[3]`).";

    quote! {
        #[doc = #type_doc]
        #[allow(dead_code)]
        #vis struct #name {
            backbone: #backbone_ty,
            pnet: ::predify::runtime::PNet,
        }

        #[allow(dead_code, clippy::needless_range_loop, clippy::redundant_closure_call)]
        impl #name {
            /// The predified network's name, from the spec.
            pub const NAME: &'static ::core::primitive::str = #name_str;

            #[doc = #spec_toml_doc]
            pub const SPEC_TOML: &'static ::core::primitive::str = #spec_toml;

            #[doc = #attach_doc]
            pub const ATTACH_POINTS: &'static [&'static ::core::primitive::str] = &[#(#attach),*];

            /// Number of pcoders.
            pub const NUM_PCODERS: ::core::primitive::usize = #n_lit;

            /// Per-sample input size (`input_size`): `[C, H, W]` or `[C, D, H, W]`.
            pub const INPUT_SIZE: &'static [::core::primitive::usize] = &[#(#input_size),*];

            /// The validated spec (parsed from [`Self::SPEC_TOML`]; the macro already checked it).
            pub fn spec() -> ::predify::runtime::Result<::predify::spec::Spec> {
                ::predify::spec::Spec::from_toml_str(Self::SPEC_TOML).map_err(::predify::runtime::Error::from)
            }

            /// Wraps `backbone` and loads the pcoders from `vb`, which is positioned at the network
            /// root: predictor weights under Predify's names `pcoder{i}.pmodule.*` (i from 1), read or
            /// created as `vb` does; √C of gradient-scaled pcoders from `pcoder{i}.C_sqrt` when
            /// present, else computed exactly ([`::predify::runtime::CSqrtSource::CheckpointOrExact`]).
            ///
            /// The shapes of the attach points (and so the default predictors) are probed by one
            /// backbone pass on a zero sample of `input_size` on `vb`'s device.
            pub fn new(
                __predify_backbone: #backbone_ty,
                __predify_vb: ::predify::candle_nn::VarBuilder,
            ) -> ::predify::runtime::Result<Self> {
                Self::with_c_sqrt(__predify_backbone, __predify_vb, ::predify::runtime::CSqrtSource::CheckpointOrExact)
            }

            /// [`Self::new`] with an explicit source for √C of gradient-scaled pcoders.
            pub fn with_c_sqrt(
                __predify_backbone: #backbone_ty,
                __predify_vb: ::predify::candle_nn::VarBuilder,
                __predify_c_sqrt: ::predify::runtime::CSqrtSource,
            ) -> ::predify::runtime::Result<Self> {
                let __predify_spec = Self::spec()?;
                #(#checks)*
                let __predify_device = ::core::clone::Clone::clone(__predify_vb.device());
                let __predify_shapes = Self::__predify_probe(&__predify_backbone, &__predify_device)?;
                let __predify_pnet = ::predify::runtime::PNet::load(&__predify_spec, &__predify_shapes, __predify_vb, __predify_c_sqrt)?;
                ::core::result::Result::Ok(Self { backbone: __predify_backbone, pnet: __predify_pnet })
            }

            /// The backbone.
            pub fn backbone(&self) -> &#backbone_ty {
                &self.backbone
            }

            /// The pcoders (shapes, predictors, hyperparameters).
            pub fn pnet(&self) -> &::predify::runtime::PNet {
                &self.pnet
            }

            /// The pcoders, mutably (e.g. to change hyperparameters).
            pub fn pnet_mut(&mut self) -> &mut ::predify::runtime::PNet {
                &mut self.pnet
            }

            /// Takes the network apart into the backbone and the pcoders.
            pub fn into_parts(self) -> (#backbone_ty, ::predify::runtime::PNet) {
                (self.backbone, self.pnet)
            }

            /// A fresh state for the batch `input` (`[N, ...input_size]`, f32). One network serves
            /// any number of states; read each pcoder's `rep`, `prd`, `prediction_error` and the
            /// per-timestep error trace from it.
            pub fn new_state(
                &self,
                __predify_input: &::predify::candle_core::Tensor,
            ) -> ::predify::runtime::Result<::predify::runtime::State> {
                self.pnet.new_state(::core::clone::Clone::clone(__predify_input))
            }

            /// One timestep: one backbone pass on the state's input in which every pcoder fires at
            /// its attach point (its representation replaces the layer's output); returns the logits.
            /// After an error the state is mid-pass: start a new one.
            pub fn step(
                &self,
                __predify_state: &mut ::predify::runtime::State,
            ) -> ::predify::runtime::Result<::predify::candle_core::Tensor> {
                self.step_inspect(__predify_state, |_, _| {})
            }

            /// [`Self::step`], calling `on_ff(i, ff)` with pcoder `i`'s feedforward drive (the
            /// output of the layer it follows, before the pcoder replaces it) just before it fires.
            pub fn step_inspect<__PredifyF>(
                &self,
                __predify_state: &mut ::predify::runtime::State,
                mut __predify_on_ff: __PredifyF,
            ) -> ::predify::runtime::Result<::predify::candle_core::Tensor>
            where
                __PredifyF: ::core::ops::FnMut(::core::primitive::usize, &::predify::candle_core::Tensor),
            {
                let __predify_pnet = &self.pnet;
                __predify_pnet.begin_pass(__predify_state)?;
                let __predify_input = ::core::clone::Clone::clone(__predify_state.input());
                let __predify_out = Self::__predify_traverse(
                    &self.backbone,
                    &__predify_input,
                    &mut |__predify_i, __predify_ff| {
                        __predify_on_ff(__predify_i, &__predify_ff);
                        __predify_pnet.fire(__predify_i, &__predify_ff, __predify_state)
                    },
                )?;
                __predify_pnet.end_pass(__predify_state)?;
                ::core::result::Result::Ok(__predify_out)
            }

            /// Runs `timesteps` timesteps on a fresh state for `input`; returns the logits of every
            /// timestep and the final state.
            pub fn run(
                &self,
                __predify_input: &::predify::candle_core::Tensor,
                __predify_timesteps: ::core::primitive::usize,
            ) -> ::predify::runtime::Result<(::std::vec::Vec<::predify::candle_core::Tensor>, ::predify::runtime::State)> {
                let mut __predify_state = self.new_state(__predify_input)?;
                let __predify_logits = self.run_state(&mut __predify_state, __predify_timesteps)?;
                ::core::result::Result::Ok((__predify_logits, __predify_state))
            }

            /// Runs `timesteps` more timesteps on an existing state (e.g. one made with
            /// `State::with_initial_reps`); returns the logits of each.
            pub fn run_state(
                &self,
                __predify_state: &mut ::predify::runtime::State,
                __predify_timesteps: ::core::primitive::usize,
            ) -> ::predify::runtime::Result<::std::vec::Vec<::predify::candle_core::Tensor>> {
                let mut __predify_logits = ::std::vec::Vec::with_capacity(__predify_timesteps);
                for _ in 0..__predify_timesteps {
                    __predify_logits.push(self.step(__predify_state)?);
                }
                ::core::result::Result::Ok(__predify_logits)
            }

            /// The backbone alone, without pcoders.
            pub fn forward_plain(
                &self,
                __predify_input: &::predify::candle_core::Tensor,
            ) -> ::predify::runtime::Result<::predify::candle_core::Tensor> {
                Self::__predify_traverse(&self.backbone, __predify_input, &mut |_, __predify_h| {
                    ::core::result::Result::Ok(__predify_h)
                })
            }

            /// β (feedforward), λ (feedback) and α (pc) used by pcoder `i` (0-based).
            pub fn hyperparameters(
                &self,
                __predify_i: ::core::primitive::usize,
            ) -> ::predify::runtime::Result<::predify::runtime::Hyperparameters> {
                self.pnet.hyperparameters(__predify_i)
            }

            /// Sets pcoder `i`'s hyperparameters (every pcoder's when they are shared).
            pub fn set_hyperparameters(
                &mut self,
                __predify_i: ::core::primitive::usize,
                __predify_h: ::predify::runtime::Hyperparameters,
            ) -> ::predify::runtime::Result<()> {
                self.pnet.set_hyperparameters(__predify_i, __predify_h)
            }

            /// Pcoder `i`'s hyperparameters in Predify's learnable logit form.
            pub fn logits(
                &self,
                __predify_i: ::core::primitive::usize,
            ) -> ::predify::runtime::Result<::predify::runtime::HyperLogits> {
                self.pnet.logits(__predify_i)
            }

            /// Sets pcoder `i`'s hyperparameters from logits.
            pub fn set_logits(
                &mut self,
                __predify_i: ::core::primitive::usize,
                __predify_l: ::predify::runtime::HyperLogits,
            ) -> ::predify::runtime::Result<()> {
                self.pnet.set_logits(__predify_i, __predify_l)
            }

            /// The feedback (predictor) parameters as `Var`s, named as in Predify checkpoints
            /// (`pcoder1.pmodule.weight`), for training the feedback path.
            pub fn feedback_vars(&self) -> ::std::vec::Vec<(::std::string::String, ::predify::candle_core::Var)> {
                self.pnet.feedback_vars()
            }

            /// Predify's feedback-training loss (Σ of each pcoder's reconstruction MSE) at the state's
            /// current representations, and its gradient w.r.t. every predictor parameter.
            pub fn reconstruction_grads(
                &self,
                __predify_state: &::predify::runtime::State,
            ) -> ::predify::runtime::Result<::predify::runtime::ReconstructionGrads> {
                self.pnet.reconstruction_grads(__predify_state)
            }

            /// The output shape (per sample) of every attach point, by one pass on a zero sample.
            fn __predify_probe(
                __predify_backbone: &#backbone_ty,
                __predify_device: &::predify::candle_core::Device,
            ) -> ::predify::runtime::Result<::std::vec::Vec<::std::vec::Vec<::core::primitive::usize>>> {
                let mut __predify_dims: ::std::vec::Vec<::core::primitive::usize> = ::std::vec![1usize];
                __predify_dims.extend_from_slice(Self::INPUT_SIZE);
                let __predify_x = ::predify::candle_core::Tensor::zeros(
                    __predify_dims,
                    ::predify::candle_core::DType::F32,
                    __predify_device,
                )?;
                let mut __predify_shapes = ::std::vec::Vec::with_capacity(Self::NUM_PCODERS);
                Self::__predify_traverse(__predify_backbone, &__predify_x, &mut |_, __predify_ff| {
                    __predify_shapes.push(__predify_ff.dims().get(1..).unwrap_or(&[]).to_vec());
                    ::core::result::Result::Ok(__predify_ff)
                })?;
                ::core::result::Result::Ok(__predify_shapes)
            }

            /// One backbone pass: the fields in declaration order, `hook(i, h)` at pcoder `i`'s
            /// attach point (its result replaces `h`).
            fn __predify_traverse(
                __predify_backbone: &#backbone_ty,
                __predify_input: &::predify::candle_core::Tensor,
                __predify_hook: &mut dyn ::core::ops::FnMut(
                    ::core::primitive::usize,
                    ::predify::candle_core::Tensor,
                ) -> ::predify::runtime::Result<::predify::candle_core::Tensor>,
            ) -> ::predify::runtime::Result<::predify::candle_core::Tensor> {
                #[allow(unused_imports)]
                use ::predify::candle_core::Module as _;
                #[allow(unused_imports)]
                use ::predify::candle_core::ModuleT as _;
                let mut __predify_h = ::core::clone::Clone::clone(__predify_input);
                #(#stmts)*
                ::core::result::Result::Ok(__predify_h)
            }
        }
    }
}
