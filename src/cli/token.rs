//! `tocsin token create`: a bearer token, printed once; only its hash is
//! stored.

use anyhow::bail;

use super::load_rules;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::people::PersonId;
use crate::token::{self, TokenInfo, TokenRole};

pub async fn create(config: &Config, name: String, role: String, person: Option<String>) -> anyhow::Result<()> {
    let role: TokenRole = role.parse().map_err(anyhow::Error::msg)?;
    let name = name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        bail!("--name must be 1 to 100 characters");
    }
    let person = match person {
        Some(p) => {
            let rules = load_rules(config)?;
            let id: PersonId = p.parse().map_err(anyhow::Error::msg)?;
            if !rules.people.contains_key(&id) {
                bail!("unknown person {p:?}: use an id from {}", config.paths.rules.display());
            }
            Some(id)
        }
        None => None,
    };
    let store = crate::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let secret = token::generate();
    store.insert_token(&TokenInfo { name, role, person }, &token::hash(&secret), SystemClock.now()).await?;
    println!("{secret}");
    Ok(())
}
