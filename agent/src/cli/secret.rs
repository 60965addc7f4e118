//! `skerry secret put NAME` (value from stdin), `skerry secret ls` (names only),
//! `skerry secret rm NAME`: the device's local secret store (see `crate::secrets`).
//! A running agent picks a new secret up without a restart.

use std::io::Read as _;

use anyhow::Context as _;

use super::Context;
use crate::secrets::{SecretStore, MAX_SECRET_BYTES};

#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Store a secret; its value is read from stdin (one trailing newline is dropped).
    Put { name: String },
    /// List the stored secrets' names (never their values).
    Ls,
    /// Remove a secret.
    Rm { name: String },
}

pub fn secret(ctx: &Context, cmd: SecretCommand) -> anyhow::Result<i32> {
    let store = SecretStore::new(&ctx.layout);
    match cmd {
        SecretCommand::Put { name } => {
            let mut value = Vec::new();
            std::io::stdin()
                .take(MAX_SECRET_BYTES as u64 + 2)
                .read_to_end(&mut value)
                .context("reading the secret's value from stdin")?;
            if value.ends_with(b"\n") {
                value.pop();
            }
            match store.put(&name, &value) {
                Ok(()) => {
                    println!("{name}");
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("skerry: {e}");
                    Ok(2)
                }
            }
        }
        SecretCommand::Ls => {
            for name in store.list()? {
                println!("{name}");
            }
            Ok(0)
        }
        SecretCommand::Rm { name } => match store.remove(&name) {
            Ok(true) => {
                println!("{name}");
                Ok(0)
            }
            Ok(false) => {
                eprintln!("skerry: no secret {name:?} (see skerry secret ls)");
                Ok(2)
            }
            Err(e) => {
                eprintln!("skerry: {e}");
                Ok(2)
            }
        },
    }
}
