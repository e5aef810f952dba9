//! The annotated struct as the macro sees it: its fields in forward order and which of them
//! are lists of layers.

use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Fields, GenericArgument, Ident, ItemStruct, Lit, PathArguments, Type};

/// How a field takes part in the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// One layer.
    Single,
    /// `Vec<T>`: a list of layers whose length is known only at run time.
    Vec,
    /// `[T; N]`: a list of layers, with `N` when it is a literal.
    Array(Option<usize>),
}

/// A named field of the struct.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) ident: Ident,
    pub(crate) kind: FieldKind,
    /// `#[predify(skip)]`: not part of the forward pass.
    pub(crate) skip: bool,
    /// `#[predify(module_t)]`: called as `ModuleT::forward_t(x, false)` rather than `Module`.
    pub(crate) module_t: bool,
}

/// The struct: the item to re-emit (helper attributes removed) and its fields.
pub(crate) struct Model {
    pub(crate) item: ItemStruct,
    pub(crate) fields: Vec<Field>,
}

impl Model {
    /// The fields that run, in declaration (= forward) order.
    pub(crate) fn forward_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.skip)
    }
}

/// Reads the struct. Problems with the struct itself (not a struct with named fields,
/// generics, bad helper attributes) are returned all together; the item is always returned
/// with the helper attributes stripped so it can be re-emitted.
pub(crate) fn parse(mut item: ItemStruct) -> (Model, Vec<syn::Error>) {
    let mut errors = Vec::new();
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            item.generics.span(),
            "#[predify] does not support generic structs: annotate a concrete struct (a type alias does not work either; wrap the generic model in a concrete struct)",
        ));
    }
    let mut fields = Vec::new();
    match &mut item.fields {
        Fields::Named(named) => {
            for f in named.named.iter_mut() {
                let mut skip = false;
                let mut module_t = false;
                let mut kept = Vec::new();
                for attr in std::mem::take(&mut f.attrs) {
                    if !attr.path().is_ident("predify") {
                        kept.push(attr);
                        continue;
                    }
                    let res = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("skip") {
                            skip = true;
                            Ok(())
                        } else if meta.path.is_ident("module_t") {
                            module_t = true;
                            Ok(())
                        } else {
                            Err(meta.error("unknown field option: expected `#[predify(skip)]` or `#[predify(module_t)]`"))
                        }
                    });
                    if let Err(e) = res {
                        errors.push(e);
                    }
                }
                f.attrs = kept;
                let Some(ident) = f.ident.clone() else { continue };
                fields.push(Field { ident, kind: kind_of(&f.ty), skip, module_t });
            }
        }
        Fields::Unnamed(_) | Fields::Unit => errors.push(syn::Error::new(
            item.ident.span(),
            "#[predify] needs a struct with named fields: the fields are the backbone's layers, run in declaration order",
        )),
    }
    (Model { item, fields }, errors)
}

/// `Vec<T>` (by its last path segment), `[T; N]`, or a single layer.
fn kind_of(ty: &Type) -> FieldKind {
    match ty {
        Type::Array(a) => FieldKind::Array(literal_len(&a.len)),
        Type::Group(g) => kind_of(&g.elem),
        Type::Paren(p) => kind_of(&p.elem),
        Type::Path(p) if p.qself.is_none() => match p.path.segments.last() {
            Some(seg) if seg.ident == "Vec" => match &seg.arguments {
                PathArguments::AngleBracketed(a)
                    if a.args.len() == 1 && matches!(a.args.first(), Some(GenericArgument::Type(_))) =>
                {
                    FieldKind::Vec
                }
                _ => FieldKind::Single,
            },
            _ => FieldKind::Single,
        },
        _ => FieldKind::Single,
    }
}

fn literal_len(e: &Expr) -> Option<usize> {
    match e {
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse().ok(),
        Expr::Group(g) => literal_len(&g.expr),
        Expr::Paren(p) => literal_len(&p.expr),
        _ => None,
    }
}
