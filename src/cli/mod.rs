//! The binary's subcommands, one file each, and the parts `run` is made of (the shutdown
//! signal, the terms of leadership).

pub mod run;
pub mod shutdown;
pub mod terms;
pub mod url;
