//! Coxswain's controller manager. Each controller is a level-triggered reconciler on
//! kube-runtime that reads desired and observed state through the API server and converges;
//! none touches the store. One module per controller.
//!
//! - [`namespace`]: empties a namespace being deleted, then lets the API server remove it.

pub mod namespace;

use kube::Client;

/// Runs every controller until they all end (they end only if their watches cannot go on).
pub async fn run(client: Client) {
    namespace::run(client).await;
}
