//! Where each store is, and opening them: the control plane's store and, per region, a
//! notification store and a credential vault, each on SQLite or PostgreSQL.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chimatic_domain::{Region, SystemClock};
use chimatic_store::{
    ControlBackend, ControlStore, DataBackend, KekSet, Keyring, PostgresBackend, SqliteBackend, SqliteFiles, Store,
    VaultBackend,
};

use crate::config::StoreArgs;

#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Location {
    /// `postgres://…`/`postgresql://…`, or `sqlite://PATH` (`sqlite:///abs/file.db`).
    fn parse(url: &str, variable: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_string()))
        } else if let Some(path) = url.strip_prefix("sqlite://").filter(|p| !p.is_empty()) {
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else {
            // The URL may hold a password: name the variable, not the value.
            anyhow::bail!("{variable} must start with postgres://, postgresql:// or sqlite://")
        }
    }
}

pub struct RegionConfig {
    pub region: Region,
    pub data: Location,
    pub vault: Location,
}

pub struct Topology {
    pub control: Location,
    /// The primary region first.
    pub regions: Vec<RegionConfig>,
}

impl Topology {
    pub fn region(&self, name: &Region) -> anyhow::Result<&RegionConfig> {
        self.regions.iter().find(|r| &r.region == name).with_context(|| {
            format!(
                "region `{name}` is not configured: set CHIMATIC_REGION_{}_DATABASE_URL and …_VAULT_DATABASE_URL",
                name.env_name()
            )
        })
    }
}

fn region_from_env(region: Region) -> anyhow::Result<RegionConfig> {
    let prefix = format!("CHIMATIC_REGION_{}_", region.env_name());
    let var = |suffix: &str| -> anyhow::Result<Location> {
        let name = format!("{prefix}{suffix}");
        let value = std::env::var(&name).with_context(|| format!("{name} is not set"))?;
        Location::parse(&value, &name)
    };
    Ok(RegionConfig { data: var("DATABASE_URL")?, vault: var("VAULT_DATABASE_URL")?, region })
}

impl StoreArgs {
    pub fn topology(&self) -> anyhow::Result<Topology> {
        let primary = match (&self.database_url, &self.vault_database_url) {
            (Some(data), Some(vault)) => RegionConfig {
                region: self.primary_region.clone(),
                data: Location::parse(data, "CHIMATIC_DATABASE_URL")?,
                vault: Location::parse(vault, "CHIMATIC_VAULT_DATABASE_URL")?,
            },
            _ => {
                let files = SqliteFiles::in_dir(&self.data_dir);
                RegionConfig {
                    region: self.primary_region.clone(),
                    data: Location::Sqlite(files.data),
                    vault: Location::Sqlite(files.vault),
                }
            }
        };
        let control = match (&self.control_database_url, &primary.data) {
            (Some(url), _) => Location::parse(url, "CHIMATIC_CONTROL_DATABASE_URL")?,
            (None, Location::Postgres(url)) => Location::Postgres(url.clone()),
            (None, Location::Sqlite(_)) => Location::Sqlite(SqliteFiles::in_dir(&self.data_dir).control),
        };
        let mut regions = vec![primary];
        let mut names: Vec<String> = std::env::vars()
            .filter_map(|(k, _)| {
                k.strip_prefix("CHIMATIC_REGION_")
                    .and_then(|rest| {
                        rest.strip_suffix("_VAULT_DATABASE_URL").or_else(|| rest.strip_suffix("_DATABASE_URL"))
                    })
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let region: Region = name
                .to_ascii_lowercase()
                .parse()
                .with_context(|| format!("CHIMATIC_REGION_{name}_…: a region name is 1 to 16 letters and digits"))?;
            anyhow::ensure!(
                !regions.iter().any(|r| r.region == region),
                "region `{region}` is configured twice (it is the primary region)"
            );
            regions.push(region_from_env(region)?);
        }
        for r in &regions {
            anyhow::ensure!(
                r.data != r.vault,
                "region `{}`: the credential vault needs its own database, not the notification store's",
                r.region
            );
            anyhow::ensure!(
                r.vault != control,
                "region `{}`: the control store cannot share the vault's database",
                r.region
            );
            for other in regions.iter().filter(|o| o.region != r.region) {
                anyhow::ensure!(
                    r.data != other.data && r.data != other.vault && r.vault != other.vault,
                    "regions `{}` and `{}` share a database; each region needs its own",
                    r.region,
                    other.region
                );
            }
        }
        Ok(Topology { control, regions })
    }
}

pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => create_private_dir(parent),
        _ => Ok(()),
    }
}

pub async fn open_control(location: &Location) -> anyhow::Result<Arc<ControlStore>> {
    let backend: Arc<dyn ControlBackend> = match location {
        Location::Postgres(url) => Arc::new(PostgresBackend::open_control(url).await.context("control store")?),
        Location::Sqlite(path) => {
            create_parent(path)?;
            Arc::new(SqliteBackend::open_control(path).context("control store")?)
        }
    };
    Ok(Arc::new(ControlStore::new(backend)))
}

/// Opens a region's store; each region caches its own unwrapped DEKs.
pub async fn open_region(
    config: &RegionConfig,
    keks: &KekSet,
    kek_args: &crate::keys::KekArgs,
) -> anyhow::Result<Arc<Store>> {
    let keyring = Keyring::with_keks(keks.clone(), Arc::new(SystemClock), chimatic_store::DEK_CACHE_TTL)
        .with_byok_ttl(std::time::Duration::from_secs(kek_args.byok_cache_secs));
    let what = |part: &str| format!("region `{}` {part}", config.region);
    let data: Arc<dyn DataBackend> = match &config.data {
        Location::Postgres(url) => Arc::new(PostgresBackend::open_data(url).await.with_context(|| what("data store"))?),
        Location::Sqlite(path) => {
            create_parent(path)?;
            Arc::new(SqliteBackend::open_data(path).with_context(|| what("data store"))?)
        }
    };
    let vault: Arc<dyn VaultBackend> = match &config.vault {
        Location::Postgres(url) => Arc::new(PostgresBackend::open_vault(url).await.with_context(|| what("vault"))?),
        Location::Sqlite(path) => {
            create_parent(path)?;
            Arc::new(SqliteBackend::open_vault(path).with_context(|| what("vault"))?)
        }
    };
    let store = Store::connect(config.region.clone(), data, vault, keyring).await.with_context(|| what("store"))?;
    Ok(Arc::new(store))
}

/// `chimatic migrate`: opening a store migrates it, so open every configured one.
pub async fn migrate(args: &StoreArgs) -> anyhow::Result<()> {
    let topology = args.topology()?;
    open_control(&topology.control).await?;
    let (kek, _) = args.kek().await?;
    for region in &topology.regions {
        open_region(region, &kek, &args.kek).await?;
    }
    println!("schema is up to date");
    Ok(())
}
