//! `inspect`: prints what the cache holds for one account or one repository, as JSON, the way
//! the AppView will read it. Read-only.

use std::collections::BTreeMap;

use fred::prelude::*;
use serde_json::{json, Map, Value};

use crate::index::keys::Keys;
use crate::valkey::StoreError;

fn failed(error: fred::error::Error) -> StoreError {
    StoreError::Unavailable(error.details().to_owned())
}

/// The cache contents for `did`, or for one of its repositories.
pub async fn inspect(
    client: &Client,
    keys: &Keys,
    did: &str,
    repository: Option<&str>,
) -> Result<Value, StoreError> {
    let mut out = Map::new();
    out.insert("did".into(), json!(did));
    out.insert("user".into(), string_json(client, &keys.user(did)).await?);
    let repos: Vec<(String, f64)> = client
        .zrange(keys.repos(did), 0, -1, None, false, None, true)
        .await
        .map_err(failed)?;
    let names: Vec<String> = match repository {
        Some(name) => vec![name.to_owned()],
        None => repos.iter().map(|(name, _)| name.clone()).collect(),
    };
    let scores: BTreeMap<String, i64> = repos
        .into_iter()
        .map(|(name, score)| (name, score as i64))
        .collect();
    out.insert("repositories".into(), json!(scores));
    let mut details = Map::new();
    for name in names {
        details.insert(
            name.clone(),
            repository_json(client, keys, did, &name).await?,
        );
    }
    out.insert("repository".into(), Value::Object(details));
    Ok(Value::Object(out))
}

async fn repository_json(
    client: &Client,
    keys: &Keys,
    did: &str,
    repo: &str,
) -> Result<Value, StoreError> {
    let manifests: Vec<(String, f64)> = client
        .zrange(
            keys.repo(did, repo, "manifests"),
            0,
            -1,
            None,
            false,
            None,
            true,
        )
        .await
        .map_err(failed)?;
    let mut entries = Vec::new();
    for (digest, _) in &manifests {
        entries.push(manifest_json(client, keys, did, digest).await?);
    }
    let tags: BTreeMap<String, String> = client
        .hgetall(keys.repo(did, repo, "tags"))
        .await
        .map_err(failed)?;
    let annotations: BTreeMap<String, String> = client
        .hgetall(keys.repo(did, repo, "annotations"))
        .await
        .map_err(failed)?;
    let stats: BTreeMap<String, String> = client
        .hgetall(keys.repo(did, repo, "stats"))
        .await
        .map_err(failed)?;
    let stars: i64 = client
        .zcard(keys.repo(did, repo, "stars"))
        .await
        .map_err(failed)?;
    Ok(json!({
        "manifests": entries,
        "tags": parsed_map(tags),
        "annotations": annotations,
        "page": string_json(client, &keys.repo(did, repo, "page")).await?,
        "stars": stars,
        "stats": parsed_map(stats),
    }))
}

async fn manifest_json(
    client: &Client,
    keys: &Keys,
    did: &str,
    digest: &str,
) -> Result<Value, StoreError> {
    let parents: Vec<String> = client
        .smembers(keys.manifest(did, digest, ":parents"))
        .await
        .map_err(failed)?;
    Ok(json!({
        "digest": digest,
        "manifest": string_json(client, &keys.manifest(did, digest, "")).await?,
        "layers": string_json(client, &keys.manifest(did, digest, ":layers")).await?,
        "references": string_json(client, &keys.manifest(did, digest, ":refs")).await?,
        "parents": parents,
        "scan": string_json(client, &keys.manifest(did, digest, ":scan")).await?,
    }))
}

async fn string_json(client: &Client, key: &str) -> Result<Value, StoreError> {
    let text: Option<String> = client.get(key).await.map_err(failed)?;
    Ok(text.map_or(Value::Null, |text| {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }))
}

fn parsed_map(fields: BTreeMap<String, String>) -> Value {
    let parsed = fields.into_iter().map(|(field, text)| {
        (
            field,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    });
    Value::Object(parsed.collect())
}
