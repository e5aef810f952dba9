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
            let module = spec.pcoders[k].module.to_string();
            let field_name = format!("`{ident}` of `{struct_name}`");
            let (pcoder, j) = (usize_lit(k + 1), usize_lit(j));
            Some(quote! {
                ::predify::runtime::predified::check_index(Self::NAME, #pcoder, #module, #field_name, #j, __predify_backbone.#ident.len())?;
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
/// `i` fires): the type, its constructors and consts, and `impl Predified` (the rest of the API
/// is the trait's).
pub(crate) fn generate(model: &Model, spec: &Spec, targets: &[Target], text: &SpecText) -> TokenStream {
    let backbone_ty = &model.item.ident;
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
         Build it with [`{name_str}::new`]; run it through the [`::predify::runtime::Predified`] trait \
         (`run`, `new_state` + `step`, `forward_plain`, hyperparameters, feedback weights). The backbone's \
         fields run in declaration order; each pcoder's representation replaces the output of the layer it follows.",
        if n == 1 { "" } else { "s" },
        spec.input_size.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        spec.gradient_scaling,
        spec.shared_hyperparameters,
        pcoder_table(spec),
    );
    let spec_toml_doc = format!("The spec as Predify TOML (from {origin}).");
    let consts = quote! {
        /// The predified network's name, from the spec.
        pub const NAME: &'static ::core::primitive::str = #name_str;
        #[doc = #spec_toml_doc]
        pub const SPEC_TOML: &'static ::core::primitive::str = #spec_toml;
        /// Where each pcoder fires, in pcoder order (Predify's `module` paths, e.g. `features[3]`).
        pub const ATTACH_POINTS: &'static [&'static ::core::primitive::str] = &[#(#attach),*];
        /// Number of pcoders.
        pub const NUM_PCODERS: ::core::primitive::usize = #n_lit;
        /// Per-sample input size (`input_size`): `[C, H, W]` or `[C, D, H, W]`.
        pub const INPUT_SIZE: &'static [::core::primitive::usize] = &[#(#input_size),*];
    };
    let construct = quote! {
        #(#checks)*
        let __predify_pnet = ::predify::runtime::predified::load_pnet(
            Self::SPEC_TOML,
            |__predify_x, __predify_hook| Self::__predify_traverse(&__predify_backbone, __predify_x, __predify_hook),
            __predify_vb,
            __predify_c_sqrt,
        )?;
        ::core::result::Result::Ok(Self { backbone: __predify_backbone, pnet: __predify_pnet })
    };
    let traverse = quote! {
        #[allow(unused_imports)]
        use ::predify::candle_core::Module as _;
        #[allow(unused_imports)]
        use ::predify::candle_core::ModuleT as _;
        let mut __predify_h = ::core::clone::Clone::clone(__predify_input);
        #(#stmts)*
        ::core::result::Result::Ok(__predify_h)
    };
    emit(model, &spec.name, &type_doc, consts, construct, traverse)
}

/// What `#[predify]` emits for the type when the spec has errors: the same items with bodies
/// that are never run, so that code using the type reports nothing beyond the real errors.
pub(crate) fn placeholder(model: &Model, name: &str) -> TokenStream {
    if !model.item.generics.params.is_empty() {
        return TokenStream::new(); // already an error of its own; the type could not be named
    }
    let unreachable = quote!(::core::unreachable!("#[predify] failed to expand: see its compile errors"));
    let consts = quote! {
        /// Placeholder: `#[predify]` reported errors.
        pub const NAME: &'static ::core::primitive::str = #name;
        /// Placeholder: `#[predify]` reported errors.
        pub const SPEC_TOML: &'static ::core::primitive::str = "";
        /// Placeholder: `#[predify]` reported errors.
        pub const ATTACH_POINTS: &'static [&'static ::core::primitive::str] = &[];
        /// Placeholder: `#[predify]` reported errors.
        pub const NUM_PCODERS: ::core::primitive::usize = 0;
        /// Placeholder: `#[predify]` reported errors.
        pub const INPUT_SIZE: &'static [::core::primitive::usize] = &[];
    };
    let doc = "Placeholder: `#[predify]` reported errors on this type's spec; see them.";
    let construct = quote!(let _ = (__predify_backbone, __predify_vb, __predify_c_sqrt); #unreachable);
    let traverse = quote!(let _ = (__predify_backbone, __predify_input, __predify_hook); #unreachable);
    emit(model, name, doc, consts, construct, traverse)
}

/// The generated type around its network-specific parts: `consts`, the body of `with_c_sqrt`
/// (`construct`) and of the backbone pass (`traverse`).
fn emit(model: &Model, name: &str, doc: &str, consts: TokenStream, construct: TokenStream, traverse: TokenStream) -> TokenStream {
    let backbone_ty = &model.item.ident;
    let vis = &model.item.vis;
    let name = format_ident!("{}", name, span = Span::call_site());
    quote! {
        #[doc = #doc]
        #vis struct #name {
            backbone: #backbone_ty,
            pnet: ::predify::runtime::PNet,
        }

        #[allow(dead_code, unreachable_code, clippy::needless_range_loop)]
        impl #name {
            #consts

            /// The validated spec (parsed from [`Self::SPEC_TOML`]; the macro already checked it).
            pub fn spec() -> ::predify::runtime::Result<::predify::spec::Spec> {
                ::predify::spec::Spec::from_toml_str(Self::SPEC_TOML).map_err(::predify::runtime::Error::from)
            }

            /// Wraps `backbone` and loads the pcoders from `vb` (at the network root; see
            /// [`::predify::predify`], "Weights") after probing the attach points' shapes.
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
                #construct
            }

            /// The backbone.
            pub fn backbone(&self) -> &#backbone_ty {
                &self.backbone
            }

            /// Takes the network apart into the backbone and the pcoders.
            pub fn into_parts(self) -> (#backbone_ty, ::predify::runtime::PNet) {
                (self.backbone, self.pnet)
            }

            /// One backbone pass: the fields in declaration order, `hook(i, h)` at pcoder `i`'s
            /// attach point (its result replaces `h`).
            fn __predify_traverse(
                __predify_backbone: &#backbone_ty,
                __predify_input: &::predify::candle_core::Tensor,
                __predify_hook: &mut ::predify::runtime::predified::Hook<'_>,
            ) -> ::predify::runtime::Result<::predify::candle_core::Tensor> {
                #traverse
            }
        }

        impl ::predify::runtime::Predified for #name {
            fn pnet(&self) -> &::predify::runtime::PNet {
                &self.pnet
            }
            fn pnet_mut(&mut self) -> &mut ::predify::runtime::PNet {
                &mut self.pnet
            }
            fn traverse(
                &self,
                __predify_input: &::predify::candle_core::Tensor,
                __predify_hook: &mut ::predify::runtime::predified::Hook<'_>,
            ) -> ::predify::runtime::Result<::predify::candle_core::Tensor> {
                Self::__predify_traverse(&self.backbone, __predify_input, __predify_hook)
            }
        }
    }
}
