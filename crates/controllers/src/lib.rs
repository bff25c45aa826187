//! Coxswain's controller manager. Each controller is a level-triggered reconciler on
//! kube-runtime that reads desired and observed state through the API server and converges;
//! none touches the store. One module per controller.
//!
//! - [`namespace`]: empties a namespace being deleted, then lets the API server remove it.
//! - [`replicaset`]: keeps `spec.replicas` pods of a ReplicaSet or ReplicationController.
//! - [`deployment`]: rolls a Deployment's ReplicaSets from one pod template to the next.
//! - [`garbage_collector`]: deletes objects whose owners are gone.
//! - [`endpoints`]: the EndpointSlices and Endpoints of Services.
//! - [`clusterrole_aggregation`]: the rules of aggregated ClusterRoles (`admin`, `edit`, `view`).
//! - [`ttl_after_finished`]: finished Jobs deleted after `ttlSecondsAfterFinished`.
//! - [`service_lb`]: addresses for LoadBalancer Services (k3s's servicelb).
//! - [`service_account`]: the `default` ServiceAccount in every namespace.
//! - [`root_ca`]: the `kube-root-ca.crt` ConfigMap (the cluster CA) in every namespace.
//! - [`pod_gc`]: force-deletes pods no kubelet will remove (orphaned, unscheduled and
//!   terminating, finished beyond a threshold).
//!
//! [`leader`] is the Lease-based election that lets only one server run them (and the
//! scheduler) at a time.
//!
//! Shared by them: [`informer`] (watch caches whose events say what to reconcile),
//! [`expectations`], [`owner`] and [`claim`] (controller references, adoption), [`pods`],
//! [`events`], [`backoff`], [`api_errors`].

pub mod api_errors;
pub mod backoff;
pub mod claim;
pub mod clusterrole_aggregation;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod expectations;
pub mod garbage_collector;
pub mod informer;
pub mod leader;
pub mod namespace;
pub mod owner;
pub mod pod_gc;
pub mod pods;
pub mod replicaset;
pub mod root_ca;
pub mod service_account;
pub mod service_lb;
pub mod ttl_after_finished;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::Client;

/// Settings of the controllers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where LoadBalancer Services' addresses come from (default: the nodes' addresses).
    pub load_balancer_pool: Option<service_lb::Pool>,
    /// The cluster CA's certificate (PEM), published in every namespace as
    /// `kube-root-ca.crt`; without it the publisher does not run.
    pub root_ca: Option<String>,
    /// The pod garbage collector's threshold and period.
    pub pod_gc: pod_gc::Settings,
}

/// Runs every controller until they all end (they end only if their watches cannot go on).
pub async fn run(client: Client, options: Options) {
    let root_ca = async {
        if let Some(ca) = options.root_ca {
            root_ca::run(client.clone(), ca).await;
        }
    };
    // Every pod, watched once for all the controllers that read pods.
    let mut pods = informer::Shared::new(kube::Api::<Pod>::all(client.clone()));
    let replica_sets = replicaset::run::<ReplicaSet>(client.clone(), &mut pods);
    let replication_controllers =
        replicaset::run::<ReplicationController>(client.clone(), &mut pods);
    let deployments = deployment::run(client.clone(), &mut pods);
    let endpoints = endpoints::run(client.clone(), &mut pods);
    let pod_gc = pod_gc::run(client.clone(), options.pod_gc, pods.cache());
    // The shared watch runs as a task of its own: polled in the join below, beside the
    // controllers it feeds, a new leader's controllers sometimes never reconciled.
    let _pods = AbortOnDrop(tokio::spawn(pods.run()));
    tokio::join!(
        namespace::run(client.clone()),
        replica_sets,
        replication_controllers,
        deployments,
        endpoints,
        service_lb::run(client.clone(), options.load_balancer_pool),
        service_account::run(client.clone()),
        root_ca,
        pod_gc,
        garbage_collector::run(client.clone()),
        clusterrole_aggregation::run(client.clone()),
        ttl_after_finished::run(client.clone()),
    );
}

/// A task that stops when its handle is dropped (when leadership is lost).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
