//! Tests of the Redis store that need no server (the ones that do are in
//! `tests/redis.rs` and `tests/redis_ha.rs`).

use super::*;

#[test]
fn tls_urls_and_sentinel_urls() {
    assert!(is_tls_url("rediss://h:6380"));
    assert!(is_tls_url("VALKEYS://h"));
    assert!(!is_tls_url("redis://h"));
    assert!(!is_tls_url("h:6379"));
    assert_eq!(without_db("redis://u:p@h:26379/3"), "redis://u:p@h:26379");
    assert!(RedisTarget::Cluster(vec!["rediss://a".into()]).is_tls());
    assert!(!RedisTarget::Sentinel {
        master: "m".into(),
        urls: vec!["redis://a".into()]
    }
    .is_tls());
}

#[test]
fn debug_never_shows_passwords_or_pem() {
    let t = RedisTarget::Sentinel {
        master: "m".into(),
        urls: vec!["redis://u:hunter2@a:26379".into()],
    };
    let d = format!("{t:?}");
    assert!(!d.contains("hunter2") && d.contains("***"), "{d}");
    let tls = RedisTls {
        ca: Some(b"-----BEGIN CERTIFICATE-----\nx\n".to_vec()),
        client: None,
    };
    assert!(!format!("{tls:?}").contains("BEGIN"));
    let o = RedisOptions {
        tls,
        ..RedisOptions::new("rediss://:hunter2@h")
    };
    assert!(!format!("{o:?}").contains("hunter2"));
    // (That CA does not parse: the store refuses it, without the URL.)
    let e = RedisStore::new(o.clone()).unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
    let s = RedisStore::new(RedisOptions {
        tls: RedisTls::default(),
        ..o
    })
    .unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn tls_check_names_the_part_that_is_wrong() {
    let tls = |ca: &[u8], client: Option<(&[u8], &[u8])>| RedisTls {
        ca: Some(ca.to_vec()),
        client: client.map(|(c, k)| (c.to_vec(), k.to_vec())),
    };
    let e = tls(b"nothing", None).check().unwrap_err();
    assert!(e.contains("CA"), "{e}");
    let e = tls(
        b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        None,
    )
    .check()
    .unwrap_err();
    assert!(e.contains("unusable"), "{e}");
    let key = b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n";
    let e = RedisTls {
        ca: None,
        client: Some((key.to_vec(), key.to_vec())),
    }
    .check()
    .unwrap_err();
    assert!(e.contains("client certificate"), "{e}");
}
