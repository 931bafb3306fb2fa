//! Every record kind created, updated and deleted through the real daemon, a real Valkey and a
//! WebSocket Jetstream; each test asserts the exact keys, values and TTL classes of docs/keys.md.

mod support;

use serde_json::Value;
use support::events::*;
use support::jetstream::FakeJetstream;
use support::scenario::index_all;
use support::valkey::Valkey;

const OWNER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const STARRER: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const TOMBSTONE: i64 = 172_800;

/// The account key prefix of a DID.
fn key(did: &str, rest: &str) -> String {
    format!("atcr:{{{did}}}:{rest}")
}

fn json_at(valkey: &Valkey, key: &str) -> Value {
    let text = valkey.exec(&["GET", key]);
    let text = text.as_str().unwrap_or_else(|| panic!("{key} is missing"));
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{key} is not JSON: {error}"))
}

fn hash_json(valkey: &Valkey, key: &str, field: &str) -> Option<Value> {
    let reply = valkey.exec(&["HGET", key, field]);
    reply
        .as_str()
        .map(|text| serde_json::from_str(text).expect("hash value is JSON"))
}

fn zscore(valkey: &Valkey, key: &str, member: &str) -> Option<i64> {
    let reply = valkey.exec(&["ZSCORE", key, member]);
    reply
        .as_str()
        .map(|score| score.parse::<f64>().expect("numeric score") as i64)
}

fn exists(valkey: &Valkey, key: &str) -> bool {
    valkey.exec(&["EXISTS", key]).as_int() == Some(1)
}

/// Asserts the class of a key by its remaining TTL (`None` = no expiry).
fn assert_class(valkey: &Valkey, key: &str, class: Option<i64>) {
    let ttl = valkey.exec(&["TTL", key]).as_int().expect("TTL answers");
    match class {
        None => assert_eq!(ttl, -1, "{key} must not expire"),
        Some(secs) => assert!(
            ttl > secs - 60 && ttl <= secs,
            "{key}: TTL {ttl}, expected {secs}"
        ),
    }
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("fixture time")
        .timestamp_millis()
}

/// One push: an image manifest, its tag, and the hold's records about it.
struct Push {
    digest: String,
    rkey: String,
    created_at: String,
    layers: Vec<Descriptor>,
}

fn push(
    jetstream: &FakeJetstream,
    clock: &mut Clock,
    revs: &mut Revs,
    repo: &str,
    seed: &str,
) -> Push {
    let layers = vec![
        Descriptor::layer(&format!("{seed}-1")),
        Descriptor::layer(&format!("{seed}-2")),
    ];
    let digest = digest(&format!("manifest-{seed}"));
    let rkey = digest_hex(&digest).to_owned();
    let created_at = datetime(clock.peek());
    let mut record = manifest_image(
        repo,
        &digest,
        &Descriptor::config(seed),
        &layers,
        &created_at,
    );
    record["annotations"] = serde_json::json!({"org.opencontainers.image.title": seed});
    let rev = revs.next();
    jetstream.push(event_commit(
        OWNER,
        clock,
        &rev,
        "create",
        MANIFEST,
        &rkey,
        Some(record),
    ));
    Push {
        digest,
        rkey,
        created_at,
        layers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_kind_lands_with_its_keys_values_and_classes() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    let image = push(&jetstream, &mut clock, &mut revs, "web", "one");
    let uri = at_uri(OWNER, MANIFEST, &image.rkey);
    let at = datetime(clock.peek());
    let events = [
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "create",
            TAG,
            "t1",
            Some(tag("web", "latest", &uri, &at)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "create",
            REPO_PAGE,
            "web",
            Some(repo_page("web", "# Web", &at)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "create",
            PROFILE,
            "self",
            Some(sailor_profile(Some(HOLD_DID), &at)),
        ),
        event_commit(
            STARRER,
            &mut clock,
            &revs.next(),
            "create",
            STAR,
            "s1",
            Some(star(OWNER, "web", &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            CAPTAIN,
            "self",
            Some(hold_captain(OWNER, true, &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            CREW,
            "c1",
            Some(hold_crew(STARRER, "write", &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            LAYER,
            "l1",
            Some(hold_layer(&image.layers[0], OWNER, &uri, &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            STATS,
            &stats_rkey(OWNER, "web"),
            Some(hold_stats(OWNER, "web", 5, 1, &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            SCAN,
            &image.rkey,
            Some(hold_scan(
                &uri,
                "web",
                OWNER,
                Severities {
                    critical: 1,
                    high: 2,
                    medium: 3,
                    low: 4,
                },
                &at,
            )),
        ),
    ];
    jetstream.push_all(events);
    index_all(&valkey, &jetstream).await;

    let manifest_key = key(OWNER, &format!("manifest:{}", image.digest));
    let manifest = json_at(&valkey, &manifest_key);
    assert_eq!(manifest["repository"], "web");
    assert_eq!(manifest["digest"], image.digest.as_str());
    assert_eq!(manifest["holdDid"], HOLD_DID);
    assert_eq!(manifest["rkey"], image.rkey.as_str());
    assert_eq!(manifest["createdAt"], image.created_at.as_str());
    assert_class(&valkey, &manifest_key, Some(HOUR));
    let layers = json_at(&valkey, &format!("{manifest_key}:layers"));
    let digests: Vec<&str> = layers
        .as_array()
        .expect("array")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest"))
        .collect();
    assert_eq!(
        digests,
        vec![
            image.layers[0].digest.as_str(),
            image.layers[1].digest.as_str()
        ]
    );

    let created_ms = ms(&image.created_at);
    assert_eq!(
        zscore(&valkey, &key(OWNER, "repo:web:manifests"), &image.digest),
        Some(created_ms)
    );
    assert_class(&valkey, &key(OWNER, "repo:web:manifests"), Some(DAY));
    assert_eq!(
        zscore(&valkey, &key(OWNER, "repos"), "web"),
        Some(created_ms)
    );
    assert_eq!(
        zscore(&valkey, "atcr:recent:pushes", &format!("{OWNER}/web")),
        Some(created_ms)
    );
    assert_class(&valkey, "atcr:recent:pushes", None);

    let latest = hash_json(&valkey, &key(OWNER, "repo:web:tags"), "latest").expect("tag");
    assert_eq!(latest["digest"], image.digest.as_str());
    assert_eq!(latest["manifest"], uri.as_str());
    assert_eq!(latest["rkey"], "t1");
    assert_class(&valkey, &key(OWNER, "repo:web:tags"), Some(DAY));
    let annotations = valkey.exec(&[
        "HGET",
        &key(OWNER, "repo:web:annotations"),
        "org.opencontainers.image.title",
    ]);
    assert_eq!(annotations.as_str(), Some("one"));
    assert_eq!(
        json_at(&valkey, &key(OWNER, "repo:web:page"))["description"],
        "# Web"
    );

    assert!(zscore(&valkey, &key(OWNER, "repo:web:stars"), STARRER).is_some());
    assert_class(&valkey, &key(OWNER, "repo:web:stars"), None);
    assert!(zscore(&valkey, &key(STARRER, "starred"), &format!("{OWNER}/web")).is_some());
    let locator =
        hash_json(&valkey, &key(STARRER, "rkeys:io.atcr.sailor.star"), "s1").expect("locator");
    assert_eq!(
        locator,
        serde_json::json!({"owner": OWNER, "repository": "web"})
    );

    let stats = hash_json(&valkey, &key(OWNER, "repo:web:stats"), HOLD_DID).expect("stats");
    assert_eq!(
        (stats["pullCount"].as_i64(), stats["pushCount"].as_i64()),
        (Some(5), Some(1))
    );
    let scan = json_at(&valkey, &format!("{manifest_key}:scan"));
    assert_eq!(
        (scan["hold"].as_str(), scan["total"].as_i64()),
        (Some(HOLD_DID), Some(10))
    );
    assert_eq!(scan["status"], "ok");

    assert_eq!(
        json_at(&valkey, &key(HOLD_DID, "hold:captain"))["owner"],
        OWNER
    );
    let crew = hash_json(&valkey, &key(HOLD_DID, "hold:crew"), STARRER).expect("crew");
    assert_eq!(
        (crew["role"].as_str(), crew["rkey"].as_str()),
        (Some("write"), Some("c1"))
    );

    for (did, collection, rkey) in [
        (OWNER, PROFILE, "self"),
        (HOLD_DID, LAYER, "l1"),
        (OWNER, TAG, "t1"),
    ] {
        let record = json_at(&valkey, &key(did, &format!("rec:{collection}:{rkey}")));
        assert_eq!(record["uri"], format!("at://{did}/{collection}/{rkey}"));
        assert_eq!(record["value"]["$type"], collection);
        assert_class(
            &valkey,
            &key(did, &format!("rec:{collection}:{rkey}")),
            Some(HOUR),
        );
    }
    assert_eq!(
        valkey.exec(&["HGET", "atcr:meta", "schema"]).as_str(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_deletes_remove_everything_their_record_wrote() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    let first = push(&jetstream, &mut clock, &mut revs, "web", "one");
    let second = push(&jetstream, &mut clock, &mut revs, "web", "two");
    let first_uri = at_uri(OWNER, MANIFEST, &first.rkey);
    let at = datetime(clock.peek());
    jetstream.push_all([
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "create",
            TAG,
            "t1",
            Some(tag("web", "latest", &first_uri, &at)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "create",
            TAG,
            "t2",
            Some(tag("web", "stable", &first_uri, &at)),
        ),
        event_commit(
            STARRER,
            &mut clock,
            &revs.next(),
            "create",
            STAR,
            "s1",
            Some(star_old(OWNER, "web", &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            CREW,
            "c1",
            Some(hold_crew(STARRER, "read", &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            STATS,
            "st",
            Some(hold_stats(OWNER, "web", 1, 1, &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            CAPTAIN,
            "self",
            Some(hold_captain(OWNER, false, &at)),
        ),
    ]);
    // Updates: the crew role changes; the stable tag moves to the second manifest.
    let second_uri = at_uri(OWNER, MANIFEST, &second.rkey);
    jetstream.push_all([
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "update",
            CREW,
            "c1",
            Some(hold_crew(STARRER, "admin", &at)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "update",
            TAG,
            "t2",
            Some(tag("web", "stable", &second_uri, &at)),
        ),
    ]);
    // Deletes: the newest manifest, a tag, the star, the crew member, the stats, the captain.
    jetstream.push_all([
        event_delete(OWNER, &mut clock, &revs.next(), MANIFEST, &second.rkey),
        event_delete(OWNER, &mut clock, &revs.next(), TAG, "t1"),
        event_delete(STARRER, &mut clock, &revs.next(), STAR, "s1"),
        event_delete(HOLD_DID, &mut clock, &revs.next(), CREW, "c1"),
        event_delete(HOLD_DID, &mut clock, &revs.next(), STATS, "st"),
        event_delete(HOLD_DID, &mut clock, &revs.next(), CAPTAIN, "self"),
    ]);
    index_all(&valkey, &jetstream).await;

    let second_key = key(OWNER, &format!("manifest:{}", second.digest));
    for suffix in ["", ":layers"] {
        assert!(
            !exists(&valkey, &format!("{second_key}{suffix}")),
            "{second_key}{suffix} remains"
        );
    }
    assert_eq!(
        zscore(&valkey, &key(OWNER, "repo:web:manifests"), &second.digest),
        None
    );
    let first_ms = ms(&first.created_at);
    assert_eq!(
        zscore(&valkey, &key(OWNER, "repos"), "web"),
        Some(first_ms),
        "score falls back"
    );
    assert_eq!(
        zscore(&valkey, "atcr:recent:pushes", &format!("{OWNER}/web")),
        Some(first_ms)
    );
    let annotations = valkey.exec(&[
        "HGET",
        &key(OWNER, "repo:web:annotations"),
        "org.opencontainers.image.title",
    ]);
    assert_eq!(
        annotations.as_str(),
        Some("one"),
        "annotations recomputed from the newest left"
    );

    let tags = key(OWNER, "repo:web:tags");
    assert!(
        hash_json(&valkey, &tags, "latest").is_none(),
        "deleted tag remains"
    );
    let stable = hash_json(&valkey, &tags, "stable").expect("stable stays");
    assert_eq!(stable["digest"], Value::Null, "its manifest was deleted");
    assert_eq!(stable["manifest"], second_uri.as_str());

    assert_eq!(
        valkey
            .exec(&["ZCARD", &key(OWNER, "repo:web:stars")])
            .as_int(),
        Some(0)
    );
    assert_eq!(
        valkey.exec(&["ZCARD", &key(STARRER, "starred")]).as_int(),
        Some(0)
    );
    assert!(hash_json(&valkey, &key(HOLD_DID, "hold:crew"), STARRER).is_none());
    assert!(hash_json(&valkey, &key(OWNER, "repo:web:stats"), HOLD_DID).is_none());
    assert!(!exists(&valkey, &key(HOLD_DID, "hold:captain")));

    let tombstone_key = key(OWNER, &format!("rec:io.atcr.manifest:{}", second.rkey));
    let tombstone = json_at(&valkey, &tombstone_key);
    assert_eq!(tombstone["deleted"], true);
    assert_class(&valkey, &tombstone_key, Some(TOMBSTONE));
    assert!(hash_json(&valkey, &key(OWNER, "rkeys:io.atcr.manifest"), &second.rkey).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_before_its_manifest_gets_the_digest_when_the_manifest_arrives() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    let digest = digest("manifest-late");
    let rkey = digest_hex(&digest).to_owned();
    let uri = at_uri(OWNER, MANIFEST, &rkey);
    let at = datetime(clock.peek());
    jetstream.push(event_commit(
        OWNER,
        &mut clock,
        &revs.next(),
        "create",
        TAG,
        "t1",
        Some(tag("web", "latest", &uri, &at)),
    ));
    index_all(&valkey, &jetstream).await;
    let before = hash_json(&valkey, &key(OWNER, "repo:web:tags"), "latest").expect("tag");
    assert_eq!(before["digest"], Value::Null);
    assert_eq!(
        zscore(&valkey, &key(OWNER, "repos"), "web"),
        Some(0),
        "listed with score 0"
    );

    let record = manifest_image(
        "web",
        &digest,
        &Descriptor::config("late"),
        &[Descriptor::layer("late")],
        &at,
    );
    jetstream.push(event_commit(
        OWNER,
        &mut clock,
        &revs.next(),
        "create",
        MANIFEST,
        &rkey,
        Some(record),
    ));
    index_all(&valkey, &jetstream).await;
    let after = hash_json(&valkey, &key(OWNER, "repo:web:tags"), "latest").expect("tag");
    assert_eq!(after["digest"], digest.as_str());
    assert_eq!(zscore(&valkey, &key(OWNER, "repos"), "web"), Some(ms(&at)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_records_references_with_platforms_and_parents() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    let amd = push(&jetstream, &mut clock, &mut revs, "web", "amd64");
    let arm = push(&jetstream, &mut clock, &mut revs, "web", "arm64");
    let child = |p: &Push, platform: Platform| {
        (
            Descriptor {
                media_type: OCI_MANIFEST.into(),
                digest: p.digest.clone(),
                size: 500,
            },
            platform,
        )
    };
    let children = [
        child(&amd, Platform::linux_amd64()),
        child(&arm, Platform::linux_arm64()),
    ];
    let index_digest = digest("index");
    let at = datetime(clock.peek());
    let record = manifest_index("web", &index_digest, &children, &at);
    let index_rkey = digest_hex(&index_digest).to_owned();
    jetstream.push(event_commit(
        OWNER,
        &mut clock,
        &revs.next(),
        "create",
        MANIFEST,
        &index_rkey,
        Some(record),
    ));
    index_all(&valkey, &jetstream).await;

    let refs = json_at(
        &valkey,
        &key(OWNER, &format!("manifest:{index_digest}:refs")),
    );
    assert_eq!(refs[0]["digest"], amd.digest.as_str());
    assert_eq!(refs[1]["platform"]["architecture"], "arm64");
    assert_eq!(refs[1]["platform"]["os"], "linux");
    for child in [&amd, &arm] {
        let parents = key(OWNER, &format!("manifest:{}:parents", child.digest));
        assert_eq!(
            valkey.exec(&["SMEMBERS", &parents]).strings(),
            vec![index_digest.clone()]
        );
        assert_class(&valkey, &parents, Some(DAY));
    }

    jetstream.push(event_delete(
        OWNER,
        &mut clock,
        &revs.next(),
        MANIFEST,
        &index_rkey,
    ));
    index_all(&valkey, &jetstream).await;
    for child in [&amd, &arm] {
        assert!(!exists(
            &valkey,
            &key(OWNER, &format!("manifest:{}:parents", child.digest))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_profiles_layers_scans_stats_captains_and_stars_update_and_delete() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    let image = push(&jetstream, &mut clock, &mut revs, "web", "one");
    let uri = at_uri(OWNER, MANIFEST, &image.rkey);
    let at = datetime(clock.peek());
    let later = datetime(clock.peek() + 60_000_000);
    let counts = |critical| Severities {
        critical,
        high: 0,
        medium: 0,
        low: 0,
    };
    let scan = |critical| Some(hold_scan(&uri, "web", OWNER, counts(critical), &at));
    jetstream.push_all([
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "create",
            REPO_PAGE,
            "api",
            Some(repo_page("api", "old", &at)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "create",
            PROFILE,
            "self",
            Some(sailor_profile(None, &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            LAYER,
            "l1",
            Some(hold_layer(&image.layers[0], OWNER, &uri, &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            SCAN,
            &image.rkey,
            scan(1),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            STATS,
            "st",
            Some(hold_stats(OWNER, "web", 1, 1, &at)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "create",
            CAPTAIN,
            "self",
            Some(hold_captain(OWNER, false, &at)),
        ),
        event_commit(
            STARRER,
            &mut clock,
            &revs.next(),
            "create",
            STAR,
            "s1",
            Some(star_old(OWNER, "web", &at)),
        ),
    ]);
    let mut updated_manifest = manifest_image(
        "web",
        &image.digest,
        &Descriptor::config("one"),
        &image.layers,
        &image.created_at,
    );
    updated_manifest["annotations"] =
        serde_json::json!({"org.opencontainers.image.title": "renamed"});
    jetstream.push_all([
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "update",
            REPO_PAGE,
            "api",
            Some(repo_page("api", "new", &later)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "update",
            PROFILE,
            "self",
            Some(sailor_profile(Some(HOLD_DID), &later)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "update",
            SCAN,
            &image.rkey,
            scan(7),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "update",
            STATS,
            "st",
            Some(hold_stats(OWNER, "web", 9, 2, &later)),
        ),
        event_commit(
            HOLD_DID,
            &mut clock,
            &revs.next(),
            "update",
            CAPTAIN,
            "self",
            Some(hold_captain(OWNER, true, &later)),
        ),
        event_commit(
            STARRER,
            &mut clock,
            &revs.next(),
            "update",
            STAR,
            "s1",
            Some(star_old(OWNER, "api", &later)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &revs.next(),
            "update",
            MANIFEST,
            &image.rkey,
            Some(updated_manifest),
        ),
    ]);
    index_all(&valkey, &jetstream).await;

    assert_eq!(
        json_at(&valkey, &key(OWNER, "repo:api:page"))["description"],
        "new"
    );
    assert_eq!(zscore(&valkey, &key(OWNER, "repos"), "api"), Some(0));
    let profile = json_at(&valkey, &key(OWNER, "rec:io.atcr.sailor.profile:self"));
    assert_eq!(profile["value"]["defaultHold"], HOLD_DID);
    let scan_key = key(OWNER, &format!("manifest:{}:scan", image.digest));
    assert_eq!(json_at(&valkey, &scan_key)["critical"], 7);
    let stats = hash_json(&valkey, &key(OWNER, "repo:web:stats"), HOLD_DID).expect("stats");
    assert_eq!(stats["pullCount"], 9);
    assert_eq!(
        json_at(&valkey, &key(HOLD_DID, "hold:captain"))["public"],
        true
    );
    assert_eq!(
        zscore(&valkey, &key(OWNER, "repo:web:stars"), STARRER),
        None,
        "star moved away"
    );
    assert!(
        zscore(&valkey, &key(OWNER, "repo:api:stars"), STARRER).is_some(),
        "star moved here"
    );
    assert_eq!(
        valkey
            .exec(&["ZRANGE", &key(STARRER, "starred"), "0", "-1"])
            .strings(),
        vec![format!("{OWNER}/api")]
    );
    let title = valkey.exec(&[
        "HGET",
        &key(OWNER, "repo:web:annotations"),
        "org.opencontainers.image.title",
    ]);
    assert_eq!(title.as_str(), Some("renamed"));

    jetstream.push_all([
        event_delete(OWNER, &mut clock, &revs.next(), REPO_PAGE, "api"),
        event_delete(OWNER, &mut clock, &revs.next(), PROFILE, "self"),
        event_delete(HOLD_DID, &mut clock, &revs.next(), LAYER, "l1"),
        event_delete(HOLD_DID, &mut clock, &revs.next(), SCAN, &image.rkey),
        event_delete(STARRER, &mut clock, &revs.next(), STAR, "s1"),
    ]);
    index_all(&valkey, &jetstream).await;
    assert!(!exists(&valkey, &key(OWNER, "repo:api:page")));
    assert_eq!(
        zscore(&valkey, &key(OWNER, "repos"), "api"),
        None,
        "nothing of api remains"
    );
    assert!(!exists(&valkey, &scan_key));
    assert_eq!(
        valkey
            .exec(&["ZCARD", &key(OWNER, "repo:api:stars")])
            .as_int(),
        Some(0)
    );
    for (did, collection, rkey) in [
        (OWNER, PROFILE, "self"),
        (HOLD_DID, LAYER, "l1"),
        (OWNER, REPO_PAGE, "api"),
    ] {
        let tombstone_key = key(did, &format!("rec:{collection}:{rkey}"));
        assert_eq!(
            json_at(&valkey, &tombstone_key)["deleted"],
            true,
            "{tombstone_key}"
        );
        assert_class(&valkey, &tombstone_key, Some(TOMBSTONE));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_rev_never_replaces_a_newer_one() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    let at = datetime(clock.peek());
    let (old_rev, new_rev) = (revs.next(), revs.next());
    jetstream.push_all([
        event_commit(
            OWNER,
            &mut clock,
            &new_rev,
            "create",
            REPO_PAGE,
            "web",
            Some(repo_page("web", "new", &at)),
        ),
        event_commit(
            OWNER,
            &mut clock,
            &old_rev,
            "update",
            REPO_PAGE,
            "web",
            Some(repo_page("web", "old", &at)),
        ),
        event_delete(OWNER, &mut clock, &new_rev, TAG, "t1"),
        event_commit(
            OWNER,
            &mut clock,
            &old_rev,
            "create",
            TAG,
            "t1",
            Some(tag_old("web", "v1", &digest("x"), &at)),
        ),
    ]);
    index_all(&valkey, &jetstream).await;
    assert_eq!(
        json_at(&valkey, &key(OWNER, "repo:web:page"))["description"],
        "new"
    );
    assert!(
        hash_json(&valkey, &key(OWNER, "repo:web:tags"), "v1").is_none(),
        "the tombstone wins"
    );
    assert_eq!(
        json_at(&valkey, &key(OWNER, "rec:io.atcr.tag:t1"))["deleted"],
        true
    );
}
