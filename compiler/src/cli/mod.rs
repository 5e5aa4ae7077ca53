//! Subcommands of the `sparsec` binary that need more than a few lines.

pub mod alloc;
pub mod bench;
pub mod compile;
pub mod prune;
pub mod prune_channels;
pub mod tune;
