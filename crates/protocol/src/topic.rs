//! Topic names as Pulsar normalises them: `persistent://tenant/ns/local`, short forms
//! (`topic`, `tenant/ns/topic`) expanded into `public/default`, and partitions named
//! `<base>-partition-<i>`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic name {name:?}: {why}")]
pub struct TopicNameError {
    pub name: String,
    pub why: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicName {
    pub domain: Domain,
    pub tenant: String,
    pub namespace: String,
    pub local: String,
}

const PARTITION_MARK: &str = "-partition-";

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | ':' | '.'))
}

impl TopicName {
    pub fn parse(name: &str) -> Result<TopicName, TopicNameError> {
        let err = |why| TopicNameError {
            name: name.to_string(),
            why,
        };
        let (domain, rest) = match name.split_once("://") {
            Some(("persistent", rest)) => (Domain::Persistent, rest),
            Some(("non-persistent", rest)) => (Domain::NonPersistent, rest),
            Some(_) => return Err(err("domain must be persistent or non-persistent")),
            None => {
                let parts = name.split('/').count();
                match parts {
                    1 => (Domain::Persistent, ""),
                    3 => (Domain::Persistent, name),
                    _ => return Err(err("a short name has 1 or 3 parts")),
                }
            }
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
        if !valid_segment(tenant) || !valid_segment(namespace) {
            return Err(err("tenant and namespace may only hold [A-Za-z0-9_-=:.]"));
        }
        if local.is_empty() {
            return Err(err("the topic's local name is empty"));
        }
        Ok(TopicName {
            domain,
            tenant: tenant.to_string(),
            namespace: namespace.to_string(),
            local: local.to_string(),
        })
    }

    /// The partition index, if the local name ends in `-partition-<plain decimal>`.
    pub fn partition(&self) -> Option<u32> {
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
        match (self.partition(), self.local.rsplit_once(PARTITION_MARK)) {
            (Some(_), Some((base, _))) => TopicName {
                local: base.to_string(),
                ..self.clone()
            },
            _ => self.clone(),
        }
    }

    pub fn partition_topic(&self, i: u32) -> TopicName {
        TopicName {
            local: format!("{}{PARTITION_MARK}{i}", self.local),
            ..self.clone()
        }
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}/{}/{}",
            self.domain.as_str(),
            self.tenant,
            self.namespace,
            self.local
        )
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
        let n = TopicName::parse("non-persistent://public/default/a/b").unwrap();
        assert_eq!(n.domain, Domain::NonPersistent);
        assert_eq!(n.local, "a/b");
        assert!(TopicName::parse("a/b").is_err());
        assert!(TopicName::parse("http://a/b/c").is_err());
        assert!(TopicName::parse("persistent://t/n s/c").is_err());
        assert!(TopicName::parse("persistent://t/ns/").is_err());
    }

    #[test]
    fn partitions_follow_the_last_marker() {
        let p = TopicName::parse("t-partition-1-partition-12").unwrap();
        assert_eq!(p.partition(), Some(12));
        assert_eq!(p.base().local, "t-partition-1");
        for not in ["t-partition-01", "t-partition--1", "t-partition-", "t"] {
            assert_eq!(TopicName::parse(not).unwrap().partition(), None, "{not}");
        }
        let base = TopicName::parse("t").unwrap();
        assert_eq!(
            base.partition_topic(3).to_string(),
            "persistent://public/default/t-partition-3"
        );
    }
}
