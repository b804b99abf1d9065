//! Tests of `lint.rs`.

use super::*;

const GOOD: &str = "server:
  listen: [\"127.0.0.1:8080\"]
  threads: 2
  body_timeout: 10s
routes:
  - name: a
    path: /a
    upstream:
      url: http://127.0.0.1:3000/a
    verify:
      scheme: fynapse
      secrets:
        - value: hunter2-secret
";

fn keys(problems: &[Problem]) -> Vec<(&str, u64)> {
    problems
        .iter()
        .map(|p| (p.key.as_str(), p.line.map_or(0, |l| l.0)))
        .collect()
}

#[test]
fn a_good_file_has_no_problems() {
    assert_eq!(lint(GOOD), vec![]);
    assert_eq!(lint(super::super::EMBEDDED_DEV_CONFIG), vec![]);
    let reference = include_str!("../../conf/hookgate.yaml");
    assert_eq!(lint(reference), vec![]);
}

#[test]
fn every_problem_in_one_run_with_path_line_and_snippet() {
    let bad = GOOD
        .replace("threads: 2", "threads: two")
        .replace("body_timeout: 10s", "bodytimeout: 10s\n  grace_period: 10")
        .replace(
            "    path: /a",
            "    pth: /a\n    max_body: 1.5MiB\n    validate_json: maybe",
        )
        .replace(
            "      scheme: fynapse",
            "      scheme: fynapse\n      scheme: stripe",
        );
    let p = lint(&bad);
    assert_eq!(
        keys(&p),
        vec![
            ("server.threads", 3),
            ("server.bodytimeout", 4),
            ("server.grace_period", 5),
            ("routes[0].pth", 8),
            ("routes[0].validate_json", 10),
            ("routes[0].verify.scheme", 15),
        ],
        "{p:#?}"
    );
    assert_eq!(
            p[0].to_string(),
            "line 3, column 12: server.threads: expected a whole number, found `two`\n  3 |   threads: two\n    |            ^^^"
        );
    assert!(
        p[1].message
            .starts_with("unknown key `bodytimeout`; did you mean `body_timeout`?"),
        "{}",
        p[1]
    );
    assert!(p[2].message.contains("needs a unit"), "{}", p[2]);
    assert!(p[3].message.contains("did you mean `path`?"), "{}", p[3]);
    assert!(p[4].message.contains("`true` or `false`"), "{}", p[4]);
    assert!(
        p[5].message
            .starts_with("duplicate key `scheme` (first at line 14)"),
        "{}",
        p[5]
    );
}

#[test]
fn missing_keys_and_keys_in_the_wrong_place() {
    let bad = format!("{GOOD}    tolerance: 5m\n")
        .replace("    upstream:\n      url: http://127.0.0.1:3000/a\n", "");
    let p = lint(&bad);
    assert_eq!(
        keys(&p),
        vec![("routes[0].tolerance", 12), ("routes[0].upstream", 6)],
        "{p:#?}"
    );
    assert!(
        p[0].message.contains("belongs under `routes[0].verify`"),
        "{}",
        p[0]
    );
    assert!(
        p[1].message
            .starts_with("missing: `routes[0]` needs `upstream`"),
        "{}",
        p[1]
    );
    // A typo of a required key is reported once, as the typo.
    let p = lint(&GOOD.replace("    upstream:", "    upstrem:"));
    assert_eq!(keys(&p), vec![("routes[0].upstrem", 8)], "{p:#?}");
    assert_eq!(keys(&lint("")), vec![("routes", 1)]);
    assert_eq!(keys(&lint("server: {}\n")), vec![("routes", 1)]);
}

#[test]
fn wrong_kinds() {
    let p = lint(&GOOD.replace(
        "  threads: 2",
        "  threads: [1, 2]\n  listen: 127.0.0.1:8080",
    ));
    assert_eq!(
        keys(&p),
        vec![("server.threads", 3), ("server.listen", 4)],
        "{p:#?}"
    );
    assert!(p[0].message.contains("found a list"), "{}", p[0]);
    assert!(p[1].message.contains("duplicate key"), "{}", p[1]);
    let p = lint(&GOOD.replace("  listen: [\"127.0.0.1:8080\"]", "  listen: 127.0.0.1:8080"));
    assert_eq!(keys(&p), vec![("server.listen", 2)], "{p:#?}");
    assert!(p[0].message.contains("expected a list"), "{}", p[0]);
    let p = lint(&GOOD.replace(
        "        - value: hunter2-secret",
        "        value: hunter2-secret",
    ));
    assert_eq!(keys(&p), vec![("routes[0].verify.secrets", 13)], "{p:#?}");
    assert!(p[0].message.contains("expected a list"), "{}", p[0]);
    // Quoted and YAML 1.1 forms serde accepts are accepted here too.
    assert_eq!(lint(&GOOD.replace("threads: 2", "threads: 0x10")), vec![]);
    assert_eq!(
        lint(&GOOD.replace("    path: /a", "    path: /a\n    validate_json: yes")),
        vec![]
    );
}

#[test]
fn yaml_syntax_error_has_line_and_snippet() {
    let p = lint("routes:\n  - name: [unclosed\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].line.is_some() && p[0].message.contains(" | "),
        "{}",
        p[0]
    );
}

#[test]
fn secrets_never_appear_in_snippets() {
    let cases = [
            GOOD.replace("        - value: hunter2-secret", "        - value: hunter2-secret\n          value: hunter2-secret"),
            GOOD.replace("        - value: hunter2-secret", "        - { value: hunter2-secret, vaule: hunter2-secret }"),
            GOOD.replace("        - value: hunter2-secret", "        - value: [hunter2-secret]"),
            GOOD.replace("        - value: hunter2-secret", "        - value: \"hunter2-secret"),
            format!("{GOOD}dedupe:\n  redis: {{ url: \"redis://:hunter2-secret@h\", pool: 1 }}\n"),
            GOOD.replace("    path: /a", "    path: /a\n    forward:\n      headers: { Authorization: hunter2-secret }\n      strip: true"),
            GOOD.replace("      url: http://127.0.0.1:3000/a", "      url: http://u:hunter2-secret@127.0.0.1:3000/a\n      urll: 1"),
        ];
    for yaml in cases {
        let p = lint(&yaml);
        assert!(!p.is_empty(), "{yaml}");
        let text: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let text = text.join("\n");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn snippets_for_problems_found_later() {
    let p = with_snippets(
        GOOD,
        vec![
            Problem::at(
                "routes[0].verify.secrets[0].value",
                (13, 11),
                "inline".into(),
            ),
            Problem::new("routes", "no line".into()),
        ],
    );
    assert_eq!(
        p[0].message,
        "inline\n  13 |         - value: **************\n     |           ^"
    );
    assert_eq!(p[1].message, "no line");
}

#[test]
fn suggestions() {
    assert_eq!(distance("bodytimeout", "body_timeout"), 1);
    assert_eq!(distance("", "abc"), 3);
    let k = |name| Key {
        name,
        kind: Kind::Str,
        required: false,
        secret: false,
    };
    let keys = [k("path"), k("path_prefix"), k("host"), k("methods")];
    assert_eq!(suggest("pth", &keys), Some("path"));
    assert_eq!(suggest("Path", &keys), Some("path"));
    assert_eq!(suggest("path_prefx", &keys), Some("path_prefix"));
    assert_eq!(suggest("zzz", &keys), None);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("routes: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(lint(&deep).len(), 1);
}

/// A sample file with every key of the table, as JSON (which is YAML).
fn sample(kind: &Kind) -> serde_json::Value {
    use serde_json::{json, Value as J};
    match kind {
        Kind::Int => json!(1),
        Kind::Bool => json!(true),
        Kind::Str => json!("x"),
        Kind::Duration => json!("1s"),
        Kind::Size => json!("1KiB"),
        Kind::List(k) => J::Array(vec![sample(k)]),
        Kind::FreeMap => json!({"X-A": "b"}),
        Kind::Map(keys) => J::Object(
            keys.iter()
                .map(|d| (d.name.to_string(), sample(&d.kind)))
                .collect(),
        ),
    }
}

/// Every mapping of the sample, as a JSON pointer, with its keys.
fn maps(kind: &Kind, at: String, out: &mut Vec<(String, &'static [Key])>) {
    match kind {
        Kind::List(k) => maps(k, format!("{at}/0"), out),
        Kind::Map(keys) => {
            out.push((at.clone(), keys));
            for d in keys.iter() {
                maps(&d.kind, format!("{at}/{}", d.name), out);
            }
        }
        _ => {}
    }
}

fn serde_error(doc: &serde_json::Value) -> Option<String> {
    serde_saphyr::from_str::<super::super::file::File>(&doc.to_string())
        .err()
        .map(|e| e.without_snippet().to_string())
}

#[test]
fn table_and_serde_structs_agree() {
    let full = sample(&keys::FILE);
    assert_eq!(serde_error(&full), None, "serde refuses a key of the table");
    assert_eq!(lint(&full.to_string()), vec![]);
    let mut all = Vec::new();
    maps(&keys::FILE, String::new(), &mut all);
    for (at, keys) in all {
        // serde lists the keys it knows when it meets one it does not.
        let mut doc = full.clone();
        let Some(serde_json::Value::Object(m)) = doc.pointer_mut(&at) else {
            panic!("{at}");
        };
        m.insert("zz_not_a_key".into(), serde_json::json!(1));
        let e = serde_error(&doc).unwrap_or_default();
        // "..., expected one of a, b, c at line 1, column 9"
        let tail = e.split("expected").nth(1).unwrap_or_default();
        let tail = tail.split(" at line ").next().unwrap_or_default();
        let tail = tail
            .trim()
            .trim_start_matches("one of")
            .replace(" or ", ",");
        let mut serde_keys: Vec<&str> = tail
            .split(',')
            .map(|k| k.trim().trim_matches('`'))
            .filter(|k| !k.is_empty())
            .collect();
        serde_keys.sort_unstable();
        let mut table: Vec<&str> = keys.iter().map(|d| d.name).collect();
        table.sort_unstable();
        assert_eq!(serde_keys, table, "keys at `{at}` (serde said: {e})");
        // Required in the table exactly when serde needs it.
        for d in keys.iter() {
            let mut doc = full.clone();
            if let Some(serde_json::Value::Object(m)) = doc.pointer_mut(&at) {
                m.remove(d.name);
            }
            assert_eq!(
                serde_error(&doc).is_some(),
                d.required,
                "`{at}/{}`: required in the table: {}",
                d.name,
                d.required
            );
        }
    }
}
