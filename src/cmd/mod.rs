//! The binary's subcommands beyond `run` and `check`: tools to sign, send
//! and demonstrate deliveries.

pub mod demo;
pub mod receiver;
pub mod send;
pub mod sign;
