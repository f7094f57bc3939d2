//! A connection's lookups: PARTITIONED_METADATA and LOOKUP (standalone: this broker; in a
//! cluster: the bundle's owner; on the listener a client names), within
//! `maxConcurrentLookupRequest`.

use super::*;

impl Conn {
    /// A slot among `maxConcurrentLookupRequest`, or Pulsar's TooManyRequests refusal.
    pub(super) fn lookup_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, BrokerError> {
        Arc::clone(&self.svc.lookups)
            .try_acquire_owned()
            .map_err(|_| BrokerError::TooManyRequests)
    }

    pub(super) async fn partitioned_metadata(&self, c: pb::CommandPartitionedTopicMetadata) {
        let slot = self.lookup_slot();
        let result = match slot
            .as_ref()
            .map_err(|_| BrokerError::TooManyRequests)
            .and(Self::topic_name(&c.topic))
        {
            Ok(t) => match self.authorize(&t, TopicOperation::Lookup).await {
                Err(e) => Err(e),
                Ok(()) if t.partition_index().is_some() => Ok(0),
                Ok(()) => self.svc.store.partitions(&t).await,
            },
            Err(e) => Err(e),
        };
        let resp = match result {
            Ok(n) => pb::CommandPartitionedTopicMetadataResponse {
                partitions: Some(n),
                request_id: c.request_id,
                response: Some(
                    pb::command_partitioned_topic_metadata_response::LookupType::Success as i32,
                ),
                error: None,
                message: None,
            },
            Err(e) => pb::CommandPartitionedTopicMetadataResponse {
                partitions: None,
                request_id: c.request_id,
                response: Some(
                    pb::command_partitioned_topic_metadata_response::LookupType::Failed as i32,
                ),
                error: Some(e.server_error() as i32),
                message: Some(e.to_string()),
            },
        };
        self.send(BaseCommand {
            partition_metadata_response: Some(Box::new(resp)),
            ..commands::base(Type::PartitionedMetadataResponse)
        });
    }

    pub(super) async fn lookup(&self, c: pb::CommandLookupTopic) {
        use pb::command_lookup_topic_response::LookupType;
        let failed = |error: pb::ServerError, message: String| pb::CommandLookupTopicResponse {
            response: Some(LookupType::Failed as i32),
            request_id: c.request_id,
            error: Some(error as i32),
            message: Some(message),
            ..Default::default()
        };
        let name = match Self::topic_name(&c.topic) {
            Ok(t) => self.authorize(&t, TopicOperation::Lookup).await.map(|()| t),
            Err(e) => Err(e),
        };
        // A client naming a listener (`advertisedListeners`) gets that listener's URLs.
        let listener = c
            .advertised_listener_name
            .as_deref()
            .filter(|n| !n.is_empty());
        let unknown_listener = |name: &str| {
            // Pulsar's words.
            failed(
                pb::ServerError::ServiceNotReady,
                format!("the broker do not have {name} listener"),
            )
        };
        let config = &self.svc.config;
        let own = (config.service_url.clone(), config.service_url_tls.clone());
        let resp = match (name, self.svc.cluster()) {
            (Err(e), _) => failed(e.server_error(), e.to_string()),
            (Ok(_), None) => match urls_for(listener, &config.listeners, own) {
                None => unknown_listener(listener.unwrap_or_default()),
                Some((url, url_tls)) => pb::CommandLookupTopicResponse {
                    broker_service_url: url,
                    broker_service_url_tls: url_tls,
                    response: Some(LookupType::Connect as i32),
                    request_id: c.request_id,
                    authoritative: Some(true),
                    // Pulsar standalone's answer: clients dial the URL they already use
                    // (unless they asked for a listener's).
                    proxy_through_service_url: Some(listener.is_none()),
                    ..Default::default()
                },
            },
            (Ok(topic), Some(cl)) => {
                match cl.lookup(&topic, c.authoritative.unwrap_or(false)).await {
                    Ok(owner) => {
                        let (urls, kind) = match owner {
                            cluster::Owner::This => (
                                urls_for(listener, &config.listeners, own),
                                LookupType::Connect,
                            ),
                            cluster::Owner::Other(b) => (
                                urls_for(
                                    listener,
                                    &b.advertised_listeners,
                                    (Some(b.broker_url.clone()), b.broker_url_tls.clone()),
                                ),
                                LookupType::Redirect,
                            ),
                        };
                        match urls {
                            None => unknown_listener(listener.unwrap_or_default()),
                            Some((url, url_tls)) => pb::CommandLookupTopicResponse {
                                broker_service_url: url,
                                broker_service_url_tls: url_tls,
                                response: Some(kind as i32),
                                request_id: c.request_id,
                                // The answer comes from the broker deciding placement: the
                                // redirected broker takes the bundle instead of redirecting
                                // again.
                                authoritative: Some(true),
                                proxy_through_service_url: Some(false),
                                ..Default::default()
                            },
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic, error = %e, "lookup failed");
                        failed(pb::ServerError::ServiceNotReady, e.to_string())
                    }
                }
            }
        };
        self.send(BaseCommand {
            lookup_topic_response: Some(Box::new(resp)),
            ..commands::base(Type::LookupResponse)
        });
    }
}

/// The broker URLs (plain, TLS) a lookup hands out: those of the listener the client named
/// (`None` when the broker has no such listener), else `default`.
pub(super) fn urls_for(
    listener: Option<&str>,
    listeners: &cluster::AdvertisedListeners,
    default: (Option<String>, Option<String>),
) -> Option<(Option<String>, Option<String>)> {
    match listener {
        None => Some(default),
        Some(name) => listeners
            .get(name)
            .map(|l| (l.broker_url.clone(), l.broker_url_tls.clone())),
    }
}
