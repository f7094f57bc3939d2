//! Who is on a connection: CONNECT's credentials checked, and expiring ones challenged
//! (AUTH_CHALLENGE) and refreshed (AUTH_RESPONSE) for the connection's life. Logs name the
//! role or the reason, never the credentials.

use protocol::commands;
use protocol::pb::base_command::Type;
use protocol::pb::{self, BaseCommand, ServerError};
use security::{Presented, Role};

use super::{Close, Conn};

/// The credentials' life on a connection: when they expire, and whether the broker asked the
/// client for fresh ones (AUTH_CHALLENGE) and waits for its AUTH_RESPONSE.
#[derive(Debug, Default)]
pub(super) struct AuthState {
    pub(super) method: Option<String>,
    pub(super) expires_at: Option<std::time::SystemTime>,
    supports_refresh: bool,
    challenged: bool,
}

/// The ERROR that refuses a CONNECT (request id -1, as Pulsar sends it) before closing.
fn refuse_connect(error: ServerError, message: String) -> BaseCommand {
    commands::error(u64::MAX, error, message)
}

impl Conn {
    /// Authenticates a CONNECT; a refusal is sent as Pulsar's ERROR before the connection
    /// closes. Logs the role or the reason, never the credentials.
    pub(super) fn authenticate_connect(&mut self, c: &pb::CommandConnect) -> Result<(), Close> {
        let presented = Presented {
            method: c.auth_method_name.as_deref(),
            data: c.auth_data.as_deref().unwrap_or_default(),
            tls_common_name: self.tls_common_name.as_deref(),
        };
        match self.svc.authenticator.authenticate_command(presented) {
            Ok(None) => Ok(()),
            Ok(Some(a)) => {
                tracing::debug!(conn = self.id, peer = %self.peer, role = %a.role, method = a.method, "authenticated");
                self.role = Some(a.role);
                self.auth = AuthState {
                    method: c.auth_method_name.clone(),
                    expires_at: a.expires_at,
                    supports_refresh: c
                        .feature_flags
                        .as_ref()
                        .and_then(|f| f.supports_auth_refresh)
                        .unwrap_or(false),
                    challenged: false,
                };
                Ok(())
            }
            Err(e) => {
                tracing::info!(conn = self.id, peer = %self.peer, method = ?c.auth_method_name, reason = %e, "authentication failed");
                self.send(refuse_connect(
                    ServerError::AuthenticationError,
                    format!("Failed to authenticate: {e}"),
                ));
                Err(Close(format!("authentication failed: {e}")))
            }
        }
    }

    /// Every `authenticationRefreshCheckSeconds`: expired credentials are challenged once
    /// (AUTH_CHALLENGE, for clients that support it); unanswered or unsupported, the
    /// connection closes.
    pub(super) fn check_credentials(&mut self) -> Result<(), Close> {
        let Some(expires_at) = self.auth.expires_at else {
            return Ok(());
        };
        if std::time::SystemTime::now() < expires_at {
            return Ok(());
        }
        if !self.auth.supports_refresh || self.auth.challenged {
            tracing::info!(conn = self.id, peer = %self.peer, role = ?self.role.as_ref().map(Role::as_str), "credentials expired and were not refreshed: closing the connection");
            return Err(Close("credentials expired".into()));
        }
        self.auth.challenged = true;
        self.send(BaseCommand {
            auth_challenge: Some(Box::new(pb::CommandAuthChallenge {
                server_version: Some(self.svc.config.server_version.clone()),
                challenge: Some(pb::AuthData {
                    auth_method_name: self.auth.method.clone(),
                    auth_data: Some(bytes::Bytes::from_static(b"refresh")),
                }),
                protocol_version: Some(self.protocol_version),
            })),
            ..commands::base(Type::AuthChallenge)
        });
        Ok(())
    }

    /// Fresh credentials after an AUTH_CHALLENGE: they must authenticate as the same role.
    pub(super) fn auth_response(&mut self, c: pb::CommandAuthResponse) -> Result<(), Close> {
        let data = c.response.unwrap_or_default();
        let method = data.auth_method_name.or_else(|| self.auth.method.clone());
        let presented = Presented {
            method: method.as_deref(),
            data: data.auth_data.as_deref().unwrap_or_default(),
            tls_common_name: self.tls_common_name.as_deref(),
        };
        match self.svc.authenticator.authenticate_command(presented) {
            Ok(Some(a)) if Some(&a.role) == self.role.as_ref() => {
                tracing::debug!(conn = self.id, role = %a.role, "credentials refreshed");
                self.auth.expires_at = a.expires_at;
                self.auth.challenged = false;
                Ok(())
            }
            Ok(None) => Ok(()),
            Ok(Some(a)) => {
                tracing::info!(conn = self.id, peer = %self.peer, new_role = %a.role, "refreshed credentials name another role: closing the connection");
                self.send(refuse_connect(
                    ServerError::AuthenticationError,
                    "Failed to authenticate: the refreshed credentials name another role".into(),
                ));
                Err(Close("role changed on refresh".into()))
            }
            Err(e) => {
                tracing::info!(conn = self.id, peer = %self.peer, reason = %e, "refreshing the credentials failed");
                self.send(refuse_connect(
                    ServerError::AuthenticationError,
                    format!("Failed to authenticate: {e}"),
                ));
                Err(Close(format!("authentication refresh failed: {e}")))
            }
        }
    }
}
