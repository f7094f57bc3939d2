//! Namespace and topic names as Pulsar spells them, and every conversion between their forms:
//!
//! | form | example |
//! |---|---|
//! | full topic name (wire, admin JSON) | `persistent://tenant/ns/orders` |
//! | short topic names a user may type | `orders` (= `public/default`), `tenant/ns/orders` |
//! | partition | `persistent://tenant/ns/orders-partition-3` |
//! | managed-ledger name (storage) | `tenant/ns/persistent/orders` (local name percent-encoded) |
//! | admin REST path | `persistent/tenant/ns/orders` (local name percent-encoded) |
//! | namespace | `tenant/ns` |
//!
//! Nothing outside this module formats or splits these strings: every other crate holds a
//! [`TopicName`] or a [`NamespaceName`] and asks it for the form it needs.
//!
//! What a name may hold follows Pulsar: tenants and namespaces `[-=:.\w]+` (`NamedEntity`); a
//! topic's local name anything non-empty but `/` (a fourth `/`-separated part would be Pulsar's
//! legacy cluster form, which tierlog does not serve). On top of Pulsar, names that cannot be
//! shown or stored safely are refused everywhere: control characters (NUL, newline, …), bidi
//! formatting characters (which make a name display as another), blank names, and names over
//! [`MAX_NAME_BYTES`]. Subscription and producer names follow the same text rules and may hold
//! `/`: every metadata key encodes each name segment, so no two names share a key.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// The longest topic local name, subscription or producer name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Unicode bidi formatting characters: they reorder how text around them displays.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The rules every free-text name follows (see the module documentation).
fn check_text(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("the name is longer than 1024 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("the name holds a control character");
    }
    if name.chars().any(is_bidi_control) {
        return Err("the name holds a bidi formatting character");
    }
    Ok(())
}

/// Checks a subscription name.
pub fn validate_subscription(name: &str) -> Result<(), NameError> {
    check_text(name).map_err(|why| NameError {
        kind: "subscription",
        name: shown(name),
        why,
    })
}

/// Checks a producer name.
pub fn validate_producer(name: &str) -> Result<(), NameError> {
    check_text(name).map_err(|why| NameError {
        kind: "producer",
        name: shown(name),
        why,
    })
}

/// A name as an error message shows it: at most 100 characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &name[..i]),
        None => name.to_string(),
    }
}

/// Whether a topic's messages are stored (`persistent`) or only relayed (`non-persistent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    Persistent,
    NonPersistent,
}

impl Domain {
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Persistent => "persistent",
            Domain::NonPersistent => "non-persistent",
        }
    }

    pub fn parse(s: &str) -> Option<Domain> {
        match s {
            "persistent" => Some(Domain::Persistent),
            "non-persistent" => Some(Domain::NonPersistent),
            _ => None,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {name:?}: {why}")]
pub struct NameError {
    /// `topic` or `namespace`.
    pub kind: &'static str,
    pub name: String,
    pub why: &'static str,
}

/// Kept for callers that name the error after topics.
pub type TopicNameError = NameError;

const PARTITION_MARK: &str = "-partition-";

/// Pulsar's rule for tenant, namespace and cluster names (`NamedEntity`): `[-=:.\w]+`.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | ':' | '.'))
}

/// A namespace: `tenant/namespace`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceName {
    tenant: String,
    namespace: String,
}

impl NamespaceName {
    /// A namespace from its two parts, each checked against Pulsar's naming rule.
    pub fn new(tenant: &str, namespace: &str) -> Result<NamespaceName, NameError> {
        let err = |why| NameError {
            kind: "namespace",
            name: format!("{tenant}/{namespace}"),
            why,
        };
        if !valid_segment(tenant) {
            return Err(err("the tenant may only hold [A-Za-z0-9_-=:.]"));
        }
        if !valid_segment(namespace) {
            return Err(err("the namespace may only hold [A-Za-z0-9_-=:.]"));
        }
        Ok(NamespaceName {
            tenant: tenant.to_string(),
            namespace: namespace.to_string(),
        })
    }

    /// `tenant/namespace`.
    pub fn parse(name: &str) -> Result<NamespaceName, NameError> {
        match name.split_once('/') {
            Some((t, ns)) if !ns.contains('/') => NamespaceName::new(t, ns),
            _ => Err(NameError {
                kind: "namespace",
                name: name.to_string(),
                why: "expected <tenant>/<namespace>",
            }),
        }
    }

    /// Whether `tenant` is a valid tenant name.
    pub fn valid_tenant(tenant: &str) -> bool {
        valid_segment(tenant)
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The namespace's own part (after the tenant).
    pub fn local(&self) -> &str {
        &self.namespace
    }

    /// A topic of this namespace.
    pub fn topic(&self, domain: Domain, local: &str) -> Result<TopicName, NameError> {
        TopicName::new(domain, self.clone(), local)
    }

    /// The prefix every managed-ledger name of this namespace's `domain` topics starts with.
    fn managed_ledger_prefix(&self, domain: Domain) -> String {
        format!("{}/{}/{}/", self.tenant, self.namespace, domain.as_str())
    }
}

impl fmt::Display for NamespaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.namespace)
    }
}

/// A topic: domain, namespace and local name (which may itself hold `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName {
    domain: Domain,
    namespace: NamespaceName,
    local: String,
}

/// Characters escaped in a REST path segment: everything but unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'=')
    .remove(b':');

impl TopicName {
    /// A topic from its parts.
    pub fn new(
        domain: Domain,
        namespace: NamespaceName,
        local: &str,
    ) -> Result<TopicName, NameError> {
        let err = |why| NameError {
            kind: "topic",
            name: shown(&format!("{domain}://{namespace}/{local}")),
            why,
        };
        if local.is_empty() {
            return Err(err("the topic's local name is empty"));
        }
        check_text(local).map_err(err)?;
        if local.contains('/') {
            return Err(err(
                "a topic name is <tenant>/<namespace>/<topic> and its topic part holds no '/'",
            ));
        }
        Ok(TopicName {
            domain,
            namespace,
            local: local.to_string(),
        })
    }

    /// Parses a full name (`persistent://tenant/ns/topic`) or a short one (`topic` in
    /// `public/default`, or `tenant/ns/topic`), as Pulsar's clients and tools accept them.
    pub fn parse(name: &str) -> Result<TopicName, NameError> {
        let err = |why| NameError {
            kind: "topic",
            name: shown(name),
            why,
        };
        let (domain, rest) = match name.split_once("://") {
            Some((d, rest)) => (
                Domain::parse(d).ok_or(err("domain must be persistent or non-persistent"))?,
                rest,
            ),
            None => match name.split('/').count() {
                1 => (Domain::Persistent, ""),
                3 => (Domain::Persistent, name),
                _ => return Err(err("a short name has 1 or 3 parts")),
            },
        };
        let (tenant, namespace, local) = if rest.is_empty() {
            ("public", "default", name)
        } else {
            let mut it = rest.splitn(3, '/');
            match (it.next(), it.next(), it.next()) {
                (Some(t), Some(ns), Some(l)) => (t, ns, l),
                _ => return Err(err("expected tenant/namespace/topic")),
            }
        };
        let namespace = NamespaceName::new(tenant, namespace).map_err(|e| NameError {
            kind: "topic",
            name: name.to_string(),
            why: e.why,
        })?;
        TopicName::new(domain, namespace, local).map_err(|e| NameError {
            name: shown(name),
            ..e
        })
    }

    /// The topic whose managed ledger is called `name` (`tenant/ns/domain/<encoded local>`).
    pub fn from_managed_ledger_name(name: &str) -> Option<TopicName> {
        let mut it = name.splitn(4, '/');
        let (t, ns, d, local) = (it.next()?, it.next()?, it.next()?, it.next()?);
        let local = percent_decode_str(local).decode_utf8().ok()?;
        TopicName::new(Domain::parse(d)?, NamespaceName::new(t, ns).ok()?, &local).ok()
    }

    pub fn domain(&self) -> Domain {
        self.domain
    }

    pub fn namespace(&self) -> &NamespaceName {
        &self.namespace
    }

    pub fn tenant(&self) -> &str {
        &self.namespace.tenant
    }

    /// The local name (after `tenant/ns/`).
    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn is_persistent(&self) -> bool {
        self.domain == Domain::Persistent
    }

    /// The managed ledger behind the topic: `tenant/ns/<domain>/<local>`, the local name
    /// percent-encoded (as Pulsar's persistence naming does), so every topic has its own.
    pub fn managed_ledger_name(&self) -> String {
        format!(
            "{}{}",
            self.namespace.managed_ledger_prefix(self.domain),
            self.encoded_local()
        )
    }

    /// The local name percent-encoded as one path segment (no `/`, no `%` left bare).
    pub fn encoded_local(&self) -> String {
        utf8_percent_encode(&self.local, PATH_SEGMENT).to_string()
    }

    /// Whether the managed ledger `ml_name` holds a `domain` topic of `namespace`.
    pub fn managed_ledger_in(ml_name: &str, namespace: &NamespaceName, domain: Domain) -> bool {
        ml_name.starts_with(&namespace.managed_ledger_prefix(domain))
    }

    /// The admin REST path of the topic after `/admin/v2/`: `persistent/tenant/ns/<local>`,
    /// the local name percent-encoded as one path segment.
    pub fn rest_path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.domain,
            self.namespace.tenant,
            self.namespace.namespace,
            self.encoded_local()
        )
    }

    /// The partition index, if the local name ends in `-partition-<plain decimal>`.
    pub fn partition_index(&self) -> Option<u32> {
        let (_, idx) = self.local.rsplit_once(PARTITION_MARK)?;
        if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if idx.len() > 1 && idx.starts_with('0') {
            return None;
        }
        idx.parse().ok()
    }

    /// The partitioned topic this partition belongs to (itself when not a partition).
    pub fn base(&self) -> TopicName {
        match (
            self.partition_index(),
            self.local.rsplit_once(PARTITION_MARK),
        ) {
            (Some(_), Some((base, _))) => TopicName {
                local: base.to_string(),
                ..self.clone()
            },
            _ => self.clone(),
        }
    }

    /// Partition `i` of this (partitioned) topic.
    pub fn partition(&self, i: u32) -> TopicName {
        TopicName {
            local: format!("{}{PARTITION_MARK}{i}", self.local),
            ..self.clone()
        }
    }

    /// The topic as the same topic of the other domain (for listing both).
    pub fn with_domain(&self, domain: Domain) -> TopicName {
        TopicName {
            domain,
            ..self.clone()
        }
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.domain, self.namespace, self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_full_names_normalise() {
        assert_eq!(
            TopicName::parse("rt").unwrap().to_string(),
            "persistent://public/default/rt"
        );
        assert_eq!(
            TopicName::parse("t1/ns/x").unwrap().to_string(),
            "persistent://t1/ns/x"
        );
        let n = TopicName::parse("non-persistent://public/default/ab").unwrap();
        assert_eq!(n.domain(), Domain::NonPersistent);
        assert_eq!(n.local(), "ab");
        assert!(TopicName::parse("a/b").is_err());
        assert!(TopicName::parse("http://a/b/c").is_err());
        assert!(TopicName::parse("persistent://t/n s/c").is_err());
        assert!(TopicName::parse("persistent://t/ns/").is_err());
    }

    #[test]
    fn partitions_follow_the_last_marker() {
        let p = TopicName::parse("t-partition-1-partition-12").unwrap();
        assert_eq!(p.partition_index(), Some(12));
        assert_eq!(p.base().local(), "t-partition-1");
        for not in ["t-partition-01", "t-partition--1", "t-partition-", "t"] {
            assert_eq!(
                TopicName::parse(not).unwrap().partition_index(),
                None,
                "{not}"
            );
        }
        let base = TopicName::parse("t").unwrap();
        assert_eq!(
            base.partition(3).to_string(),
            "persistent://public/default/t-partition-3"
        );
    }

    #[test]
    fn every_form_converts_back() {
        let t = TopicName::parse("persistent://acme/orders/eu 2024%q1").unwrap();
        assert_eq!(
            t.managed_ledger_name(),
            "acme/orders/persistent/eu%202024%25q1"
        );
        assert_eq!(
            TopicName::from_managed_ledger_name(&t.managed_ledger_name()),
            Some(t.clone())
        );
        assert_eq!(t.rest_path(), "persistent/acme/orders/eu%202024%25q1");
        // Plain names keep their stored form.
        assert_eq!(
            TopicName::parse("t-1.x=y:z_")
                .unwrap()
                .managed_ledger_name(),
            "public/default/persistent/t-1.x=y:z_"
        );
        assert_eq!(t.namespace().to_string(), "acme/orders");
        assert!(TopicName::managed_ledger_in(
            &t.managed_ledger_name(),
            t.namespace(),
            Domain::Persistent
        ));
        assert!(!TopicName::managed_ledger_in(
            &t.managed_ledger_name(),
            &NamespaceName::parse("acme/order").unwrap(),
            Domain::Persistent
        ));
        assert!(TopicName::from_managed_ledger_name("acme/orders/queue/x").is_none());
    }

    #[test]
    fn names_that_cannot_be_stored_or_shown_safely_are_refused() {
        for bad in [
            "persistent://public/default/a/b",
            "public/default/a/b/c",
            "persistent://public/default/x\u{0}y",
            "persistent://public/default/line\nbreak",
            "persistent://public/default/\u{202E}txt.exe",
            "persistent://public/default/   ",
        ] {
            assert!(TopicName::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!(
            "persistent://public/default/{}",
            "x".repeat(MAX_NAME_BYTES + 1)
        );
        let e = TopicName::parse(&long).unwrap_err();
        assert!(
            e.to_string().len() < 300,
            "the error does not echo a huge name"
        );
        assert!(TopicName::parse("persistent://public/default/back\\slash").is_ok());
        assert!(validate_subscription("b/c").is_ok(), "encoded in keys");
        for bad in ["", " ", "a\u{0}", "x\ny", "\u{2067}s"] {
            assert!(validate_subscription(bad).is_err(), "{bad:?}");
            assert!(validate_producer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn namespaces_follow_pulsars_naming_rule() {
        let ns = NamespaceName::parse("public/default").unwrap();
        assert_eq!((ns.tenant(), ns.local()), ("public", "default"));
        for bad in ["public", "a/b/c", "/x", "x/", "a b/c", "a/b\u{0}"] {
            assert!(NamespaceName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ns.topic(Domain::Persistent, "x").unwrap().to_string(),
            "persistent://public/default/x"
        );
    }
}
