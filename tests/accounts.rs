//! Rule 6 of docs/keys.md against a real Valkey: an account that is deleted, taken down,
//! suspended or deactivated loses every key, tombstones included, and its stars elsewhere.

mod support;

use std::time::Duration;

use support::daemon::{Daemon, Options};
use support::events::*;
use support::jetstream::FakeJetstream;
use support::scenario::{cursor, index_all};
use support::valkey::Valkey;

const OWNER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const GONE: &str = "did:plc:gggggggggggggggggggggggg";

/// GONE pushes an image, tags it, deletes a tag (a tombstone), and stars OWNER's repository;
/// OWNER stars GONE's repository.
fn history(jetstream: &FakeJetstream, clock: &mut Clock, revs: &mut Revs) {
    let at = datetime(clock.peek());
    let digest = digest("gone-image");
    let rkey = digest_hex(&digest).to_owned();
    let image = manifest_image(
        "app",
        &digest,
        &Descriptor::config("g"),
        &[Descriptor::layer("g")],
        &at,
    );
    let uri = at_uri(GONE, MANIFEST, &rkey);
    jetstream.push_all([
        event_commit(
            GONE,
            clock,
            &revs.next(),
            "create",
            MANIFEST,
            &rkey,
            Some(image),
        ),
        event_commit(
            GONE,
            clock,
            &revs.next(),
            "create",
            TAG,
            "t1",
            Some(tag("app", "latest", &uri, &at)),
        ),
        event_commit(
            GONE,
            clock,
            &revs.next(),
            "create",
            TAG,
            "t2",
            Some(tag("app", "old", &uri, &at)),
        ),
        event_delete(GONE, clock, &revs.next(), TAG, "t2"),
        event_commit(
            GONE,
            clock,
            &revs.next(),
            "create",
            STAR,
            "s1",
            Some(star_old(OWNER, "web", &at)),
        ),
        event_commit(
            OWNER,
            clock,
            &revs.next(),
            "create",
            REPO_PAGE,
            "web",
            Some(repo_page("web", "x", &at)),
        ),
        event_commit(
            OWNER,
            clock,
            &revs.next(),
            "create",
            STAR,
            "s9",
            Some(star_old(GONE, "app", &at)),
        ),
    ]);
}

async fn purged_by(status: &str) {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    history(&jetstream, &mut clock, &mut revs);
    index_all(&valkey, &jetstream).await;
    assert!(
        valkey.keys(&format!("atcr:{{{GONE}}}:")).len() > 5,
        "GONE has keys before"
    );
    let stars = format!("atcr:{{{OWNER}}}:repo:web:stars");
    assert_eq!(valkey.exec(&["ZCARD", &stars]).as_int(), Some(1));

    jetstream.push(event_account(GONE, &mut clock, false, Some(status)));
    index_all(&valkey, &jetstream).await;
    let left = valkey.keys(&format!("atcr:{{{GONE}}}:"));
    assert!(left.is_empty(), "{status}: keys left: {left:?}");
    assert_eq!(
        valkey.exec(&["ZCARD", &stars]).as_int(),
        Some(0),
        "{status}: its star remains"
    );
    let recent = valkey.exec(&["ZSCORE", "atcr:recent:pushes", &format!("{GONE}/app")]);
    assert!(recent.is_nil(), "{status}: its push stays listed");
    let page = valkey.exec(&["EXISTS", &format!("atcr:{{{OWNER}}}:repo:web:page")]);
    assert_eq!(page.as_int(), Some(1), "other accounts keep their keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_loses_every_key_and_its_stars() {
    purged_by("deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_down_account_loses_every_key_and_its_stars() {
    purged_by("takendown").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_account_loses_every_key_and_its_stars() {
    purged_by("deactivated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_loses_every_key_and_its_stars() {
    purged_by("suspended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reactivated_account_is_indexed_again_from_its_next_events() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    history(&jetstream, &mut clock, &mut revs);
    jetstream.push(event_account(GONE, &mut clock, false, Some("deactivated")));
    jetstream.push(event_account(GONE, &mut clock, true, None));
    let at = datetime(clock.peek());
    jetstream.push(event_commit(
        GONE,
        &mut clock,
        &revs.next(),
        "create",
        REPO_PAGE,
        "app",
        Some(repo_page("app", "back", &at)),
    ));
    index_all(&valkey, &jetstream).await;
    let page = valkey.exec(&["GET", &format!("atcr:{{{GONE}}}:repo:app:page")]);
    assert!(
        page.as_str().is_some_and(|page| page.contains("back")),
        "indexed again: {page:?}"
    );
    let tags = valkey.exec(&["EXISTS", &format!("atcr:{{{GONE}}}:repo:app:tags")]);
    assert_eq!(
        tags.as_int(),
        Some(0),
        "what came before the purge stays gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desynchronized_or_throttled_accounts_keep_their_keys() {
    let valkey = Valkey::start();
    let jetstream = FakeJetstream::new();
    let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
    history(&jetstream, &mut clock, &mut revs);
    index_all(&valkey, &jetstream).await;
    let before = valkey.keys(&format!("atcr:{{{GONE}}}:"));
    jetstream.push(event_account(
        GONE,
        &mut clock,
        false,
        Some("desynchronized"),
    ));
    jetstream.push(event_account(GONE, &mut clock, false, Some("throttled")));
    index_all(&valkey, &jetstream).await;
    assert_eq!(valkey.keys(&format!("atcr:{{{GONE}}}:")), before);
}

mod users {
    //! Users filled and refreshed by the daemon from a fake PLC directory and PDS.

    use super::support::identity::AVATAR_CID;
    use super::support::identity::{did_document, plc_path, profile_path, FakeHost, Reply};
    use super::*;

    const STRANGER: &str = "did:plc:ssssssssssssssssssssssss";

    fn options(jetstream: &FakeJetstream, valkey: &Valkey, plc: &FakeHost) -> Options {
        let mut options = Options::new(&jetstream.url(), &valkey.url());
        let flags = [
            "--identity-plc-url",
            &plc.url(),
            "--identity-request-timeout",
            "1",
        ];
        options.extra = flags.iter().map(|flag| flag.to_string()).collect();
        options
            .extra
            .extend(["--identity-retries".into(), "1".into()]);
        options
    }

    fn user(valkey: &Valkey, did: &str) -> Option<serde_json::Value> {
        let reply = valkey.exec(&["GET", &format!("atcr:{{{did}}}:user")]);
        reply
            .as_str()
            .map(|text| serde_json::from_str(text).expect("user is JSON"))
    }

    fn serve(plc: &FakeHost, pds: &FakeHost, did: &str, handle: &str) {
        plc.serve_document(did, did_document(did, Some(handle), Some(&pds.url())));
        pds.serve_profile(did, Some(AVATAR_CID));
    }

    fn page(jetstream: &FakeJetstream, clock: &mut Clock, revs: &mut Revs, did: &str, repo: &str) {
        let at = datetime(clock.peek());
        let record = repo_page(repo, "x", &at);
        jetstream.push(event_commit(
            did,
            clock,
            &revs.next(),
            "create",
            REPO_PAGE,
            repo,
            Some(record),
        ));
    }

    async fn wait_user(
        valkey: &Valkey,
        did: &str,
        daemon: &Daemon,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) {
        let found = valkey
            .wait_until(Duration::from_secs(20), |v| {
                user(v, did).is_some_and(|user| pred(&user))
            })
            .await;
        assert!(
            found,
            "user of {did}: {:?}; log:\n{}",
            user(valkey, did),
            daemon.log()
        );
    }

    async fn caught_up(valkey: &Valkey, jetstream: &FakeJetstream, daemon: &Daemon) {
        let last = jetstream
            .events()
            .last()
            .and_then(|line| time_us_of(line))
            .expect("events");
        let reached = valkey
            .wait_until(Duration::from_secs(30), |v| cursor(v) >= Some(last))
            .await;
        assert!(
            reached,
            "cursor never reached {last}; log:\n{}",
            daemon.log()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_from_an_unknown_account_fills_its_user_key() {
        let (valkey, jetstream, plc, pds) = (
            Valkey::start(),
            FakeJetstream::new(),
            FakeHost::start(),
            FakeHost::start(),
        );
        serve(&plc, &pds, OWNER, "alice.test");
        let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
        page(&jetstream, &mut clock, &mut revs, OWNER, "web");
        let mut daemon = Daemon::start(&options(&jetstream, &valkey, &plc));
        wait_user(&valkey, OWNER, &daemon, |user| {
            user["handle"] == "alice.test"
        })
        .await;
        let user = user(&valkey, OWNER).expect("user");
        assert_eq!(user["did"], OWNER);
        assert_eq!(user["pds"], pds.url().as_str());
        let avatar = format!("https://cdn.bsky.app/img/avatar/plain/{OWNER}/{AVATAR_CID}@jpeg");
        assert_eq!(user["avatar"], avatar.as_str());
        let ttl = valkey
            .exec(&["TTL", &format!("atcr:{{{OWNER}}}:user")])
            .as_int()
            .expect("ttl");
        assert!(ttl > 3500 && ttl <= 3600, "user class: {ttl}");
        assert!(daemon.stop().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_keep_landing_while_a_pds_hangs() {
        let (valkey, jetstream, plc, pds) = (
            Valkey::start(),
            FakeJetstream::new(),
            FakeHost::start(),
            FakeHost::start(),
        );
        plc.serve_document(
            OWNER,
            did_document(OWNER, Some("alice.test"), Some(&pds.url())),
        );
        pds.set(&profile_path(OWNER), Reply::Hang);
        let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
        for index in 0..50 {
            page(
                &jetstream,
                &mut clock,
                &mut revs,
                OWNER,
                &format!("repo{index}"),
            );
        }
        let mut daemon = Daemon::start(&options(&jetstream, &valkey, &plc));
        caught_up(&valkey, &jetstream, &daemon).await;
        assert!(user(&valkey, OWNER).is_none(), "no user from a hanging PDS");
        assert!(pds.hits(&profile_path(OWNER)) >= 1, "the PDS was asked");
        assert!(daemon.stop().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_identity_event_re_resolves_only_a_known_account() {
        let (valkey, jetstream, plc, pds) = (
            Valkey::start(),
            FakeJetstream::new(),
            FakeHost::start(),
            FakeHost::start(),
        );
        serve(&plc, &pds, OWNER, "alice.test");
        let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
        page(&jetstream, &mut clock, &mut revs, OWNER, "web");
        let mut daemon = Daemon::start(&options(&jetstream, &valkey, &plc));
        wait_user(&valkey, OWNER, &daemon, |user| {
            user["handle"] == "alice.test"
        })
        .await;

        serve(&plc, &pds, OWNER, "alice2.test");
        jetstream.push(event_identity(STRANGER, &mut clock, Some("stranger.test")));
        jetstream.push(event_identity(OWNER, &mut clock, Some("alice2.test")));
        wait_user(&valkey, OWNER, &daemon, |user| {
            user["handle"] == "alice2.test"
        })
        .await;
        caught_up(&valkey, &jetstream, &daemon).await;
        assert_eq!(
            plc.hits(&plc_path(STRANGER)),
            0,
            "an unknown account costs no request"
        );
        assert!(user(&valkey, STRANGER).is_none());
        assert!(daemon.stop().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reactivated_account_is_resolved_again() {
        let (valkey, jetstream, plc, pds) = (
            Valkey::start(),
            FakeJetstream::new(),
            FakeHost::start(),
            FakeHost::start(),
        );
        serve(&plc, &pds, OWNER, "alice.test");
        let (mut clock, mut revs) = (Clock::new(EPOCH_US), Revs::new(EPOCH_US));
        page(&jetstream, &mut clock, &mut revs, OWNER, "web");
        let mut daemon = Daemon::start(&options(&jetstream, &valkey, &plc));
        wait_user(&valkey, OWNER, &daemon, |_| true).await;

        jetstream.push(event_account(OWNER, &mut clock, false, Some("deactivated")));
        caught_up(&valkey, &jetstream, &daemon).await;
        assert!(user(&valkey, OWNER).is_none(), "the purge removed the user");
        let asked = plc.hits(&plc_path(OWNER));
        jetstream.push(event_account(OWNER, &mut clock, true, None));
        jetstream.push(event_account(
            STRANGER,
            &mut clock,
            false,
            Some("deactivated"),
        ));
        jetstream.push(event_account(STRANGER, &mut clock, true, None));
        wait_user(&valkey, OWNER, &daemon, |user| {
            user["handle"] == "alice.test"
        })
        .await;
        assert_eq!(plc.hits(&plc_path(OWNER)), asked + 1);
        assert_eq!(
            plc.hits(&plc_path(STRANGER)),
            0,
            "an account without keys costs nothing when it comes back"
        );
        assert!(daemon.stop().success());
    }
}
