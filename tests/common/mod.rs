pub mod checker;
pub mod fixture;
