//! Opening a link: connecting to a node, declaring the topology and opening the publisher
//! channel in confirm mode, each within [`OPEN_TIMEOUT`]; and trying the nodes in turn.

use super::{Broker, CLOSE_TIMEOUT, Link, OPEN_TIMEOUT, OpenError, Unusable};
use crate::amqp::nodes::Node;
use crate::amqp::publish::ConfirmChannel;
use lapin::options::ConfirmSelectOptions;
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;

impl Broker {
    /// Tries every node once, starting at `first`; returns the index of the node it
    /// reached, or the last node's error and whether every node was misconfigured.
    pub(super) async fn open_any(&self, first: usize) -> Result<(usize, Link), Unusable> {
        let nodes = &self.inner.nodes;
        let mut last = None;
        let mut misconfigured = true;
        for index in first..first + nodes.len() {
            let node = nodes.get(index);
            match self.open(node).await {
                Ok(link) => return Ok((index % nodes.len(), link)),
                Err(error) => {
                    if nodes.len() > 1 {
                        tracing::warn!(node = %node, %error, "cannot use this RabbitMQ node; trying the next");
                    }
                    misconfigured &= error.is_misconfiguration();
                    last = Some(error);
                }
            }
        }
        Err(Unusable {
            last: last.expect("a list of nodes is never empty"),
            misconfigured,
        })
    }

    /// Connects to `node` (within [`OPEN_TIMEOUT`]), then declares the topology and opens
    /// the publisher channel (within it again).
    async fn open(&self, node: &Node) -> Result<Link, OpenError> {
        let name = format!("{} ({})", self.inner.service.name, std::process::id());
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let runtime = lapin::runtime::default_runtime().map_err(|source| OpenError::Amqp {
            node: node.to_string(),
            source,
        })?;
        let connecting =
            Connection::connect_with_config(node.url(), properties, node.tls(), runtime);
        let connection = match tokio::time::timeout(OPEN_TIMEOUT, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(source)) => return Err(OpenError::connect(node, source).await),
            Err(_) => return Err(OpenError::Timeout(node.to_string())),
        };
        let setup = async {
            let publisher = connection.create_channel().await?;
            self.inner
                .topology
                .declare(&publisher, &self.inner.own)
                .await?;
            publisher
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok::<_, lapin::Error>(publisher)
        };
        let failed = match tokio::time::timeout(OPEN_TIMEOUT, setup).await {
            Ok(Ok(publisher)) => {
                let connection = Arc::new(connection);
                let publisher =
                    ConfirmChannel::new(connection.clone(), publisher, self.inner.heal.clone());
                return Ok(Link::new(connection, publisher, node.to_string()));
            }
            Ok(Err(source)) => OpenError::Amqp {
                node: node.to_string(),
                source,
            },
            Err(_) => OpenError::Timeout(node.to_string()),
        };
        let _ =
            tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, "setup failed".into())).await;
        Err(failed)
    }
}
