//! The process's side: code that runs in the vcores.

pub mod program;
