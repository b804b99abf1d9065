//! Route matching: (host, path) → route, and the path the upstream gets.
//!
//! Matching is on the raw request path, never a normalised one: `//x`,
//! `/x/../y` or `%2F` do not match `/x/y`. A prefix route also refuses a
//! rest that holds a dot segment (plain or percent-encoded), because that
//! rest is appended to the upstream path and must not climb out of it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{PathMatch, Route};

/// A route found for a request, with the path to send upstream.
#[derive(Debug)]
pub struct Matched<R> {
    /// The route that matched.
    pub route: Arc<R>,
    /// Upstream path and query (`/hooks/balances?x=1`).
    pub upstream_path: String,
}

/// All routes of a config, indexed for matching. `R` is the route as the
/// caller holds it (the gateway's compiled route; a plain [`Route`] in
/// tests).
#[derive(Debug)]
pub struct RouteTable<R> {
    exact: HashMap<String, Vec<Arc<R>>>,
    /// Longest prefix first.
    prefixes: Vec<Arc<R>>,
}

impl<R: AsRef<Route>> RouteTable<R> {
    /// Indexes `routes`.
    pub fn new(routes: impl IntoIterator<Item = Arc<R>>) -> Self {
        let mut t = RouteTable {
            exact: HashMap::new(),
            prefixes: Vec::new(),
        };
        for r in routes {
            match &of(&r).path {
                PathMatch::Exact(p) => t.exact.entry(p.clone()).or_default().push(r),
                PathMatch::Prefix(_) => t.prefixes.push(r),
            }
        }
        // Host-specific routes before host-agnostic ones at the same path.
        for v in t.exact.values_mut() {
            v.sort_by_key(|r| of(r).host.is_none());
        }
        t.prefixes.sort_by(|a, b| {
            let (a, b) = (of(a), of(b));
            let len = |r: &Route| match &r.path {
                PathMatch::Prefix(p) => p.len(),
                PathMatch::Exact(_) => 0,
            };
            len(b)
                .cmp(&len(a))
                .then(a.host.is_none().cmp(&b.host.is_none()))
        });
        t
    }

    /// Every route, exact ones first.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<R>> {
        self.exact.values().flatten().chain(self.prefixes.iter())
    }

    /// Finds the route for `host` (the `Host` header, any case, port allowed)
    /// and `path_and_query` (the raw request target).
    pub fn find(&self, host: Option<&str>, path_and_query: &str) -> Option<Matched<R>> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let host = host.map(strip_port);
        let host_ok = |r: &Arc<R>| match &of(r).host {
            None => true,
            Some(h) => host.is_some_and(|x| x.eq_ignore_ascii_case(h)),
        };
        let with_query = |mut p: String| {
            if let Some(q) = query {
                p.push('?');
                p.push_str(q);
            }
            p
        };
        if let Some(rs) = self.exact.get(path) {
            if let Some(r) = rs.iter().find(|r| host_ok(r)) {
                return Some(Matched {
                    upstream_path: with_query(of(r).upstream.path.clone()),
                    route: r.clone(),
                });
            }
        }
        for r in &self.prefixes {
            let PathMatch::Prefix(prefix) = &of(r).path else {
                continue;
            };
            let Some(rest) = path.strip_prefix(prefix.as_str()) else {
                continue;
            };
            // The slash between prefix and rest is either the prefix's last
            // byte or the rest's first, never both: `/hooks//a` under
            // `/hooks/` has an empty segment and does not match.
            let rest = if prefix.ends_with('/') || rest.is_empty() {
                Some(rest)
            } else {
                rest.strip_prefix('/')
            };
            let Some(rest) = rest else {
                continue;
            };
            if !host_ok(r) || has_dot_segment(rest) {
                continue;
            }
            let upstream = &of(r).upstream;
            let base = upstream.path.trim_end_matches('/');
            let up = if rest.is_empty() {
                upstream.path.clone()
            } else {
                format!("{base}/{rest}")
            };
            return Some(Matched {
                upstream_path: with_query(up),
                route: r.clone(),
            });
        }
        None
    }
}

/// The config route behind an entry.
fn of<R: AsRef<Route>>(r: &Arc<R>) -> &Route {
    (**r).as_ref()
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Whether `rest` (the path after the prefix and its boundary slash) has a
/// `.` or `..` segment, an encoded slash or backslash, a path parameter
/// (`;`, plain or encoded: Tomcat, Jetty and Spring read `..;` as `..`), or
/// an empty segment (`//`, or a leading `/`): anything a receiver might
/// resolve differently from the plain path hookgate matched.
fn has_dot_segment(rest: &str) -> bool {
    let lower = rest.to_ascii_lowercase();
    if lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%3b")
        || rest.contains(['\\', ';'])
    {
        return true;
    }
    !rest.is_empty()
        && rest.split('/').any(|seg| {
            let s = seg.to_ascii_lowercase().replace("%2e", ".");
            seg.is_empty() || s == "." || s == ".."
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_yaml;

    fn table() -> RouteTable<Route> {
        let yaml = r#"
routes:
  - name: exact
    path: /webhooks/fynapse
    upstream: { url: "http://127.0.0.1:3000/hooks/balances" }
    verify: { scheme: fynapse, secrets: [ { value: s } ] }
  - name: hosted
    path: /webhooks/fynapse
    host: Hooks.Example.com
    upstream: { url: "http://127.0.0.1:3001/h" }
    verify: { scheme: fynapse, secrets: [ { value: s } ] }
  - name: prefix
    path_prefix: /webhooks/
    upstream: { url: "http://127.0.0.1:3000/in/" }
    verify: { scheme: fynapse, secrets: [ { value: s } ] }
  - name: longer
    path_prefix: /webhooks/special
    upstream: { url: "http://127.0.0.1:3000/special" }
    verify: { scheme: fynapse, secrets: [ { value: s } ] }
"#;
        RouteTable::new(from_yaml(yaml, "t").unwrap().routes)
    }

    fn find(host: Option<&str>, p: &str) -> Option<(String, String)> {
        table()
            .find(host, p)
            .map(|m| (m.route.name.to_string(), m.upstream_path))
    }

    fn m(name: &str, up: &str) -> Option<(String, String)> {
        Some((name.into(), up.into()))
    }

    #[test]
    fn exact_host_and_query() {
        assert_eq!(
            find(None, "/webhooks/fynapse"),
            m("exact", "/hooks/balances")
        );
        assert_eq!(
            find(Some("x"), "/webhooks/fynapse?a=1"),
            m("exact", "/hooks/balances?a=1")
        );
        assert_eq!(
            find(Some("hooks.example.COM:8443"), "/webhooks/fynapse"),
            m("hosted", "/h")
        );
    }

    #[test]
    fn prefixes_append_the_rest() {
        assert_eq!(find(None, "/webhooks/a/b?q"), m("prefix", "/in/a/b?q"));
        assert_eq!(find(None, "/webhooks/"), m("prefix", "/in/"));
        assert_eq!(find(None, "/webhooks/special/x"), m("longer", "/special/x"));
        assert_eq!(
            find(None, "/webhooks/specialx"),
            m("prefix", "/in/specialx")
        );
    }

    #[test]
    fn path_tricks_match_nothing_they_should_not() {
        for p in [
            "//webhooks/fynapse",
            "/webhooks/fynapse/",
            "/Webhooks/fynapse",
            "/webhooks/fynapse/../admin",
            "/webhooks/../admin",
            "/webhooks/%2e%2e/admin",
            "/webhooks/a%2Fb",
            "/webhooks/a//b",
            "/webhooks//a",
            "/webhooks///a",
            "/webhooks/special//x",
            "/webhooks/special/./x",
            "/webhooks/./x",
            "/webhooks/a\\..\\b",
            "/webhooks/..;/admin",
            "/webhooks/a;x=1/b",
            "/webhooks/%2e%2e%3b/admin",
            "/webhooks/special/x;y",
            "/admin",
            "/webhooksx",
        ] {
            let got = find(None, p);
            assert!(
                got.is_none() || (got.as_ref().unwrap().0 == "prefix" && p == "/webhooks/fynapse/"),
                "{p} matched {got:?}"
            );
        }
    }
}
