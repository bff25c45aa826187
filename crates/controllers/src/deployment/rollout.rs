//! The arithmetic of a rollout, as plain functions over a Deployment and its ReplicaSets
//! (upstream's `deployment_util.go`, `rolling.go`, and `sync.go`'s `scale`). Each step returns
//! a plan, a list of `(ReplicaSet index, new spec.replicas)`, that the controller carries out
//! in order.
//!
//! - [`resolve_fenceposts`]: `maxSurge` rounds up, `maxUnavailable` rounds down, and if both
//!   come to zero `maxUnavailable` is 1 so that the rollout can move.
//! - [`new_replicas`]: how far the new ReplicaSet may grow: up to `replicas + maxSurge` pods
//!   in all, never beyond `replicas`.
//! - [`max_scaled_down`], [`cleanup_unhealthy`], [`scale_down_old`]: how far old ReplicaSets
//!   may shrink: never below `replicas - maxUnavailable` available pods, counting the new
//!   ReplicaSet's unavailable pods against the budget; unhealthy old replicas go first.
//! - [`proportional_scale`]: a scaling event in mid-rollout grows or shrinks every active
//!   ReplicaSet in proportion to its size, leftovers to the largest.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::revision;

/// A ReplicaSet index and the `spec.replicas` to give it.
pub type Plan = Vec<(usize, i32)>;

pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

pub fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// An int-or-percent of `total`, as upstream's `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let percent: i64 = text
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {text:?}"))?;
            let scaled = percent * i64::from(total);
            let value = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            i32::try_from(value).map_err(|_| format!("{text} of {total} is out of range"))
        }
    }
}

/// `(maxSurge, maxUnavailable)` for `desired` replicas.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> Result<(i32, i32), String> {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        rolling.and_then(|r| r.max_surge.as_ref()),
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        desired(d),
    )
}

/// The most pods above `replicas` a rolling Deployment may run (0 for Recreate, or when
/// the value is invalid, which validation prevents).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).map_or(0, |(surge, _)| surge)
}

/// The most pods below `replicas` a rolling Deployment may leave unavailable.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling_update(d) || desired(d) == 0 {
        return 0;
    }
    fenceposts(d).map_or(0, |(_, unavailable)| unavailable.min(desired(d)))
}

pub fn total_replicas<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    sets.into_iter().map(replicas).sum()
}

/// The size the new ReplicaSet may have now (upstream's `NewRSNewReplicas`).
pub fn new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> Result<i32, String> {
    match strategy_type(d) {
        "RollingUpdate" => {
            let rolling = d
                .spec
                .as_ref()
                .and_then(|s| s.strategy.as_ref())
                .and_then(|s| s.rolling_update.as_ref());
            let zero = IntOrString::Int(0);
            let surge = scaled_value(
                rolling.and_then(|r| r.max_surge.as_ref()).unwrap_or(&zero),
                desired(d),
                true,
            )?;
            let current = total_replicas(all.iter().copied());
            let max_total = desired(d) + surge;
            if current >= max_total {
                return Ok(replicas(new));
            }
            let up = (max_total - current).min(desired(d) - replicas(new));
            Ok(replicas(new) + up)
        }
        "Recreate" => Ok(desired(d)),
        other => Err(format!("deployment type {other:?} isn't supported")),
    }
}

/// Whether the new ReplicaSet alone runs the Deployment: at full size, recorded as such,
/// and every replica available.
pub fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    revision::desired_replicas(rs) == Some(desired(d))
        && replicas(rs) == desired(d)
        && available(rs) == desired(d)
}

fn created(rs: &ReplicaSet) -> Option<i128> {
    rs.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_nanosecond())
}

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// Oldest first, then by name (upstream's `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| name(a).cmp(name(b)))
}

/// Lowest revision first, then oldest (upstream's `ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let revision =
        |rs: &ReplicaSet| revision::revision(rs.metadata.annotations.as_ref()).unwrap_or(0);
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// The one active ReplicaSet, or the newest if none is active; `None` when several are
/// active (then they scale proportionally). Upstream's `FindActiveOrLatest`.
pub fn find_active_or_latest<'a>(
    new: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let mut active = old.iter().copied().chain(new).filter(|rs| replicas(rs) > 0);
    match (active.next(), active.next()) {
        (Some(only), None) => Some(only),
        (Some(_), Some(_)) => None,
        (None, _) => new.or_else(|| old.iter().copied().max_by(|a, b| by_creation(a, b))),
    }
}

/// How many old replicas may go now without dropping below the availability floor.
pub fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    let min_available = desired(d) - max_unavailable(d);
    let new_unavailable = replicas(new) - available(new);
    total_replicas(all.iter().copied()) - min_available - new_unavailable
}

/// Shrinks old ReplicaSets (oldest first) by their unavailable replicas, `max` in all
/// (upstream's `cleanupUnhealthyReplicas`): they do not count towards availability.
pub fn cleanup_unhealthy(old: &[&ReplicaSet], max: i32) -> Plan {
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|&a, &b| by_creation(old[a], old[b]));
    let mut plan = Vec::new();
    let mut total = 0;
    for i in order {
        if total >= max {
            break;
        }
        let rs = old[i];
        if replicas(rs) == 0 || replicas(rs) == available(rs) {
            continue;
        }
        let down = (max - total).min(replicas(rs) - available(rs));
        if down <= 0 {
            continue;
        }
        plan.push((i, replicas(rs) - down));
        total += down;
    }
    plan
}

/// Shrinks old ReplicaSets (oldest first) as far as available pods above the floor allow
/// (upstream's `scaleDownOldReplicaSetsForRollingUpdate`). `all` includes `old`.
pub fn scale_down_old(d: &Deployment, all: &[&ReplicaSet], old: &[&ReplicaSet]) -> Plan {
    let min_available = desired(d) - max_unavailable(d);
    let available_pods: i32 = all.iter().map(|rs| available(rs)).sum();
    if available_pods <= min_available {
        return Vec::new();
    }
    let budget = available_pods - min_available;
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|&a, &b| by_creation(old[a], old[b]));
    let mut plan = Vec::new();
    let mut total = 0;
    for i in order {
        if total >= budget {
            break;
        }
        let rs = old[i];
        if replicas(rs) == 0 {
            continue;
        }
        let down = replicas(rs).min(budget - total);
        plan.push((i, replicas(rs) - down));
        total += down;
    }
    plan
}

/// A scaling event of a rolling Deployment with several active ReplicaSets (upstream's
/// `scale`): the replicas to add (or remove, if negative) to reach `replicas + maxSurge` are
/// shared out in proportion to each ReplicaSet's size (by its `max-replicas` annotation),
/// larger ReplicaSets first (newer first on ties when growing, older first when
/// shrinking); what rounding leaves goes to the first. `active` must be the active
/// ReplicaSets; the plan gives a size for each (unchanged ones included) and whether it
/// scales "up" or "down".
pub fn proportional_scale(d: &Deployment, active: &[&ReplicaSet]) -> (Plan, &'static str) {
    let current = total_replicas(active.iter().copied());
    let allowed = if desired(d) > 0 {
        desired(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - current;
    let mut order: Vec<usize> = (0..active.len()).collect();
    let operation = match to_add.cmp(&0) {
        Ordering::Greater => {
            order.sort_by(|&a, &b| {
                replicas(active[b])
                    .cmp(&replicas(active[a]))
                    .then_with(|| by_creation(active[b], active[a]))
            });
            "up"
        }
        Ordering::Less => {
            order.sort_by(|&a, &b| {
                replicas(active[b])
                    .cmp(&replicas(active[a]))
                    .then_with(|| by_creation(active[a], active[b]))
            });
            "down"
        }
        Ordering::Equal => "",
    };
    let mut added = 0;
    let mut sizes: Vec<(usize, i32)> = Vec::new();
    for &i in &order {
        let rs = active[i];
        if to_add == 0 {
            sizes.push((i, replicas(rs)));
            continue;
        }
        let share = proportion(d, rs, to_add, added);
        sizes.push((i, replicas(rs) + share));
        added += share;
    }
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    (sizes, operation)
}

/// One ReplicaSet's share of `to_add`, given `added` so far (upstream's `GetProportion`).
fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
    if replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(d, rs);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// How much a ReplicaSet would grow or shrink to keep its share of the Deployment's new
/// size (upstream's `getReplicaSetFraction`).
fn fraction(d: &Deployment, rs: &ReplicaSet) -> i32 {
    if desired(d) == 0 {
        return -replicas(rs);
    }
    let size = desired(d) + max_surge(d);
    let annotated = revision::max_replicas(rs)
        .unwrap_or_else(|| d.status.as_ref().map_or(0, |s| s.replicas.unwrap_or(0)));
    if annotated == 0 {
        return 0;
    }
    let share = f64::from(replicas(rs)) * f64::from(size) / f64::from(annotated);
    // Go's math.Round: half away from zero, as `f64::round`.
    share.round() as i32 - replicas(rs)
}

#[cfg(test)]
pub(crate) mod tests;
