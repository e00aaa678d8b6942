//! The binary's subcommands, one file each.

pub mod run;
pub mod shutdown;
pub mod url;
