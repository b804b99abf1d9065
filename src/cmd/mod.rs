//! The binary's subcommands beyond `run` and `check`: tools to sign, send
//! and demonstrate deliveries.

pub mod demo;
pub mod logs;
pub mod receiver;
pub mod send;
pub mod sign;

/// A body from a file, or from standard input.
pub fn read_body(path: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
    match path {
        Some(p) => std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display())),
        None => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| e.to_string())?;
            Ok(b)
        }
    }
}
