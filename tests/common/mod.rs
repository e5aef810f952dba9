pub mod checker;
pub mod device;
pub mod fixture;
