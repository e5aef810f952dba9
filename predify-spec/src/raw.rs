//! The loosely typed, located form of a spec that front-ends produce and [`crate::validate`]
//! checks.
//!
//! A front-end (the TOML reader here, the `#[predify]` macro's inline syntax elsewhere) only
//! turns its syntax into a tree of [`RawValue`]s, each with a location `L` of its choosing
//! (a byte span for TOML; for the macro e.g. an index into a table of spans). All checks —
//! required and unknown keys, types, ranges — live in validation, so every front-end reports
//! the same errors, each pointing at the front-end's own location.

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T, L> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub loc: L,
}

impl<T, L> Located<T, L> {
    /// Pairs a value with its location.
    pub fn new(value: T, loc: L) -> Self {
        Self { value, loc }
    }
}

/// A loosely typed value: what the syntax said, before any check.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue<L> {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An array (a TOML array or array of tables).
    Array(Vec<Located<RawValue<L>, L>>),
    /// A table (TOML table or inline table).
    Table(RawTable<L>),
    /// Any other kind of value the front-end can express but specs never use (e.g. a TOML
    /// datetime); the string names the kind for error messages.
    Other(String),
}

impl<L> RawValue<L> {
    /// How the value reads in an error message: its type and, for scalars, the value.
    pub fn describe(&self) -> String {
        match self {
            RawValue::Str(s) if s.chars().count() > 40 => {
                let head: String = s.chars().take(40).collect();
                format!("string {head:?}...")
            }
            RawValue::Str(s) => format!("string {s:?}"),
            RawValue::Int(i) => format!("integer {i}"),
            RawValue::Float(f) => format!("float {f:?}"),
            RawValue::Bool(b) => format!("boolean {b}"),
            RawValue::Array(_) => "an array".to_string(),
            RawValue::Table(_) => "a table".to_string(),
            RawValue::Other(kind) => kind.clone(),
        }
    }
}

/// One `key = value` of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry<L> {
    /// The key as written.
    pub key: Located<String, L>,
    /// Its value.
    pub value: Located<RawValue<L>, L>,
}

/// A table: its entries in source order (duplicates are reported by validation).
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable<L> {
    /// The entries in source order.
    pub entries: Vec<RawEntry<L>>,
}

impl<L> Default for RawTable<L> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<L> RawTable<L> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `key = value`.
    pub fn push(&mut self, key: Located<String, L>, value: Located<RawValue<L>, L>) {
        self.entries.push(RawEntry { key, value });
    }

    /// Appends `key = value` (builder style).
    pub fn with(mut self, key: Located<String, L>, value: Located<RawValue<L>, L>) -> Self {
        self.push(key, value);
        self
    }

    /// The first entry with this key.
    pub fn get(&self, key: &str) -> Option<&RawEntry<L>> {
        self.entries.iter().find(|e| e.key.value == key)
    }
}

/// A whole spec: the root table and where the spec as a whole is (errors about missing
/// root keys point there).
pub type RawSpec<L> = Located<RawTable<L>, L>;

/// One pcoder: its table and where it is (errors about missing keys point there).
pub type RawPCoder<L> = Located<RawTable<L>, L>;
