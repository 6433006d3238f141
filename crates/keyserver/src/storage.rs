//! Where export files go: an `object_store` (a local folder by default, an
//! S3-compatible bucket in production). [`ObjectKind`] owns what each kind of
//! object is: its content type and cache policy, used both when writing to a
//! bucket (as object attributes) and when the server itself serves the folder.

use std::sync::Arc;

use anyhow::Context as _;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ObjectStore, PutOptions, PutPayload, aws::AmazonS3Builder,
    local::LocalFileSystem, memory::InMemory, prefix::PrefixStore,
};
use secrecy::ExposeSecret;

use crate::config::{StorageConfig, StorageKind};

/// Name of the Google-style index (one object path a line, oldest first).
pub const INDEX_TXT: &str = "index.txt";
/// Name of the COCOA-style index inside the region's folder.
pub const LIST_JSON: &str = "list.json";

/// The kinds of object the exporter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A signed export zip: immutable, cacheable for a day.
    Zip,
    /// `index.txt`: rewritten at every export, never cached.
    IndexTxt,
    /// `{region}/list.json`: rewritten at every export, never cached.
    ListJson,
}

impl ObjectKind {
    /// The kind of an object path, by its name.
    pub fn of_path(path: &str) -> Option<Self> {
        if path.ends_with(".zip") {
            Some(Self::Zip)
        } else if path == INDEX_TXT || path.ends_with("/index.txt") {
            Some(Self::IndexTxt)
        } else if path.ends_with("/list.json") {
            Some(Self::ListJson)
        } else {
            None
        }
    }

    /// `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Zip => "application/zip",
            Self::IndexTxt => "text/plain; charset=utf-8",
            Self::ListJson => "application/json",
        }
    }

    /// `Cache-Control`: zips a day, indexes not at all.
    pub fn cache_control(self) -> &'static str {
        match self {
            Self::Zip => "public, max-age=86400",
            Self::IndexTxt | Self::ListJson => "no-cache",
        }
    }
}

/// An object read back.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its bytes.
    pub bytes: axum::body::Bytes,
    /// Its version, as [`ExportStorage::version`] gives it.
    pub version: String,
    /// Its entity tag, when the store gives one.
    pub e_tag: Option<String>,
    /// `Content-Type` kept by the store (S3), if any.
    pub content_type: Option<String>,
    /// `Cache-Control` kept by the store (S3), if any.
    pub cache_control: Option<String>,
}

/// An object's version: its size, modification time and the store's own tag.
fn version_of(m: &object_store::ObjectMeta) -> String {
    format!(
        "{}-{}-{}",
        m.size,
        m.last_modified.timestamp_nanos_opt().unwrap_or_default(),
        m.e_tag.as_deref().unwrap_or_default()
    )
}

/// The export object store.
#[derive(Debug, Clone)]
pub struct ExportStorage {
    store: Arc<dyn ObjectStore>,
    /// Whether the store keeps content type and cache headers (S3 does, a
    /// local folder does not).
    attributes: bool,
}

impl ExportStorage {
    /// A local folder, created when missing.
    pub fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening {}", dir.display()))?;
        Ok(Self {
            store: Arc::new(fs),
            attributes: false,
        })
    }

    /// An in-memory store (tests).
    pub fn memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            attributes: false,
        }
    }

    /// The store of a configuration (`<data>/exports` by default).
    pub fn from_config(c: &StorageConfig, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        match c.kind {
            StorageKind::Local => {
                Self::local(&c.path.clone().unwrap_or_else(|| data_dir.join("exports")))
            }
            StorageKind::S3 => {
                let bucket = c
                    .bucket
                    .as_deref()
                    .context("storage kind s3 needs a bucket")?;
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(c.region.clone().unwrap_or_else(|| "us-east-1".into()))
                    .with_allow_http(c.allow_http);
                if let Some(e) = &c.endpoint {
                    b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                }
                if let Some(id) = &c.access_key_id {
                    b = b.with_access_key_id(id);
                }
                if let Some(secret) = &c.secret_access_key {
                    b = b.with_secret_access_key(secret.expose_secret());
                }
                let s3 = b.build().context("configuring the S3 store")?;
                let store: Arc<dyn ObjectStore> =
                    match c.prefix.as_deref().map(|p| p.trim_matches('/')) {
                        Some(p) if !p.is_empty() => Arc::new(PrefixStore::new(s3, p)),
                        _ => Arc::new(s3),
                    };
                Ok(Self {
                    store,
                    attributes: true,
                })
            }
        }
    }

    fn path(path: &str) -> anyhow::Result<ObjectPath> {
        ObjectPath::parse(path).with_context(|| format!("invalid object path {path:?}"))
    }

    /// Writes an object (atomically: a reader sees the old or the new one).
    pub async fn put(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let kind =
            ObjectKind::of_path(path).with_context(|| format!("unknown object kind {path:?}"))?;
        let mut opts = PutOptions::default();
        if self.attributes {
            let mut attrs = Attributes::new();
            attrs.insert(Attribute::ContentType, kind.content_type().into());
            attrs.insert(Attribute::CacheControl, kind.cache_control().into());
            opts.attributes = attrs;
        }
        self.store
            .put_opts(&Self::path(path)?, PutPayload::from(bytes), opts)
            .await
            .with_context(|| format!("writing {path}"))?;
        Ok(())
    }

    /// The version of an object (size, modification time and the store's
    /// own tag) without reading it; `None` when it does not exist.
    pub async fn version(&self, path: &str) -> anyhow::Result<Option<String>> {
        let p = Self::path(path)?;
        match self.store.head(&p).await {
            Ok(m) => Ok(Some(version_of(&m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {path}")),
        }
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> anyhow::Result<Option<Object>> {
        let p = Self::path(path)?;
        match self.store.get(&p).await {
            Ok(r) => {
                let e_tag = r.meta.e_tag.clone();
                let version = version_of(&r.meta);
                let attr = |a: Attribute| r.attributes.get(&a).map(|v| v.to_string());
                let content_type = attr(Attribute::ContentType);
                let cache_control = attr(Attribute::CacheControl);
                let bytes = r.bytes().await.with_context(|| format!("reading {path}"))?;
                Ok(Some(Object {
                    bytes,
                    version,
                    e_tag,
                    content_type,
                    cache_control,
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {path}")),
        }
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        match self.store.delete(&Self::path(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {path}")),
        }
    }

    /// Every object path, sorted (tests list the stored files).
    pub async fn list(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut dirs = vec![None::<ObjectPath>];
        while let Some(dir) = dirs.pop() {
            let listing = self
                .store
                .list_with_delimiter(dir.as_ref())
                .await
                .context("listing objects")?;
            out.extend(listing.objects.into_iter().map(|m| m.location.to_string()));
            dirs.extend(listing.common_prefixes.into_iter().map(Some));
        }
        out.sort();
        Ok(out)
    }
}
