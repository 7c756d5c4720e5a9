//! Settings parsed once from flags and `NUDGE_*` variables, and the store they name.

use crate::cli::GlobalArgs;
use anyhow::Context;
use nudge_store::Store;
use nudge_store_postgres::PgStore;
use nudge_store_sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Settings {
    pub data_dir: PathBuf,
    database: Option<String>,
}

impl Settings {
    pub fn new(args: GlobalArgs) -> Self {
        Self {
            data_dir: args.data_dir,
            database: args.database.filter(|d| !d.trim().is_empty()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database
            .as_deref()
            .is_some_and(|d| d.starts_with("postgres://") || d.starts_with("postgresql://"))
    }

    /// The database for messages, without any password it may contain.
    pub fn database_display(&self) -> String {
        match &self.database {
            Some(url) if self.is_postgres() => redact_password(url),
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("nudge.db").display()),
        }
    }

    /// Opens the store, creating and migrating the database when needed.
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        if self.is_postgres() {
            let url = self.database.as_deref().unwrap_or_default();
            let store = PgStore::connect(url)
                .await
                .with_context(|| format!("could not open {}", self.database_display()))?;
            return Ok(Arc::new(store));
        }
        let path = match &self.database {
            Some(url) => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .with_context(|| {
                        format!("--database must start with sqlite:// or postgres://, not {url}")
                    })?;
                PathBuf::from(path)
            }
            None => self.data_dir.join("nudge.db"),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create the directory {}", dir.display()))?;
        }
        let store = SqliteStore::open(&path)
            .await
            .with_context(|| format!("could not open {}", path.display()))?;
        Ok(Arc::new(store))
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("postgres://h/db"), "postgres://h/db");
    }
}
