//! ServiceAccounts and their tokens, with the real kubectl against a control-plane-only
//! server: `kubectl create token` (TokenRequest), the token as a credential (`kubectl auth
//! whoami`, a Forbidden that names the account), TokenReview, `kubectl auth can-i`, and the
//! token's end when its audience is wrong, its account or its bound pod is gone; RBAC: what
//! a binding grants, where, `kubectl auth can-i --list`, aggregated roles, and the refusal to
//! grant what one does not hold.

mod cluster;

use std::process::Output;

use cluster::{Cluster, wait_until};

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn service_account_tokens_authenticate_until_their_account_or_pod_is_gone() {
    let cluster = Cluster::start();
    cluster.ok(&["create", "serviceaccount", "builder"]);
    let token = cluster
        .ok(&["create", "token", "builder"])
        .trim()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let as_builder = cluster.token_kubeconfig("builder", &token);

    // Who the token is, and that it is no more than that.
    let whoami = cluster.kubectl_as(
        &as_builder,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    assert_eq!(
        text(&whoami),
        "system:serviceaccount:default:builder [\"system:serviceaccounts\",\"system:serviceaccounts:default\",\"system:authenticated\"]"
    );
    let listed = cluster.kubectl_as(&as_builder, &["get", "pods"]);
    assert!(!listed.status.success());
    assert!(
        text(&listed).contains(
            "User \"system:serviceaccount:default:builder\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        text(&listed)
    );
    let can = cluster.kubectl_as(&as_builder, &["auth", "can-i", "list", "pods"]);
    assert_eq!(text(&can).trim(), "no");
    assert_eq!(cluster.ok(&["auth", "can-i", "list", "pods"]).trim(), "yes");

    // RBAC: a RoleBinding to the aggregated `view` role lets it read in its namespace only.
    cluster.ok(&[
        "create",
        "rolebinding",
        "builder-view",
        "--clusterrole=view",
        "--serviceaccount=default:builder",
    ]);
    wait_until(
        "the binding to apply",
        std::time::Duration::from_secs(20),
        || {
            cluster
                .kubectl_as(&as_builder, &["get", "pods"])
                .status
                .success()
        },
    );
    let secrets = cluster.kubectl_as(&as_builder, &["get", "secrets"]);
    assert!(
        text(&secrets).contains("cannot list resource \"secrets\""),
        "view does not read secrets: {}",
        text(&secrets)
    );
    let elsewhere = cluster.kubectl_as(
        &as_builder,
        &["auth", "can-i", "list", "pods", "-n", "kube-system"],
    );
    assert_eq!(text(&elsewhere).trim(), "no");
    let listed = text(&cluster.kubectl_as(&as_builder, &["auth", "can-i", "--list"]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("pods ") && l.contains("[get list watch]")),
        "{listed}"
    );
    // Impersonation: the admin may act as the account; the account may not act as others.
    let as_it = ["--as", "system:serviceaccount:default:builder"];
    assert_eq!(
        cluster
            .ok(&[&["auth", "can-i", "list", "pods"][..], &as_it].concat())
            .trim(),
        "yes"
    );
    let no = cluster.kubectl(&[&["auth", "can-i", "list", "secrets"][..], &as_it].concat());
    assert_eq!(text(&no).trim(), "no");
    let climb = cluster.kubectl_as(&as_builder, &["get", "pods", "--as", "admin"]);
    assert!(
        text(&climb).contains("cannot impersonate resource \"users\""),
        "{}",
        text(&climb)
    );

    // The aggregation controller wrote `view`'s rules back for all to see.
    wait_until(
        "view's aggregated rules",
        std::time::Duration::from_secs(20),
        || {
            cluster
                .ok(&[
                    "get",
                    "clusterrole",
                    "view",
                    "-o",
                    "jsonpath={.rules[*].resources}",
                ])
                .contains("pods")
        },
    );

    // Nobody grants what they do not hold.
    cluster.ok(&[
        "create",
        "role",
        "role-maker",
        "--verb=create,get,patch",
        "--resource=roles",
    ]);
    cluster.ok(&[
        "create",
        "rolebinding",
        "builder-role-maker",
        "--role=role-maker",
        "--serviceaccount=default:builder",
    ]);
    wait_until(
        "the role maker binding to apply",
        std::time::Duration::from_secs(20),
        || {
            text(&cluster.kubectl_as(&as_builder, &["auth", "can-i", "create", "roles"])).trim()
                == "yes"
        },
    );
    let held = cluster.kubectl_as(
        &as_builder,
        &["create", "role", "reader", "--verb=get", "--resource=pods"],
    );
    assert!(held.status.success(), "{}", text(&held));
    let stolen = cluster.kubectl_as(
        &as_builder,
        &[
            "create",
            "role",
            "thief",
            "--verb=get",
            "--resource=secrets",
        ],
    );
    assert!(
        text(&stolen).contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        text(&stolen)
    );
    // Nor by patching a role they may change: judged on the role the patch would leave.
    let widened = cluster.kubectl_as(
        &as_builder,
        &[
            "patch",
            "role",
            "reader",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}}]"#,
        ],
    );
    assert!(
        text(&widened).contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        text(&widened)
    );
    let held = cluster.kubectl_as(
        &as_builder,
        &[
            "patch",
            "role",
            "reader",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["pods"],"verbs":["list"]}}]"#,
        ],
    );
    assert!(held.status.success(), "{}", text(&held));
    assert!(
        cluster
            .ok(&[
                "get",
                "role",
                "reader",
                "-o",
                "jsonpath={.rules[*].resources}"
            ])
            .contains("pods"),
    );
    assert!(
        !cluster
            .ok(&[
                "get",
                "role",
                "reader",
                "-o",
                "jsonpath={.rules[*].resources}"
            ])
            .contains("secrets"),
        "the refused patch left nothing"
    );

    // A TokenReview says whose it is.
    let review = cluster.file(
        "review.json",
        &serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        })
        .to_string(),
    );
    // (`create --raw`: kubectl's client-side validation of kinds without PATCH asks for
    // CustomResourceDefinitions, which this server does not serve yet.)
    let reviewed = cluster.ok(&[
        "create",
        "--raw",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        "-f",
        &review,
    ]);
    let reviewed: serde_json::Value = serde_json::from_str(&reviewed).expect("json");
    assert_eq!(reviewed["status"]["authenticated"], true);
    assert_eq!(
        reviewed["status"]["user"]["username"],
        "system:serviceaccount:default:builder"
    );

    // Tokens for another audience, or too short-lived, are not this server's to accept.
    let vault = cluster.ok(&["create", "token", "builder", "--audience", "vault"]);
    let for_vault = cluster.token_kubeconfig("vault", vault.trim());
    let refused = cluster.kubectl_as(&for_vault, &["auth", "whoami"]);
    assert!(
        text(&refused).contains("Unauthorized"),
        "{}",
        text(&refused)
    );
    let short = cluster.fails(&["create", "token", "builder", "--duration", "1m"]);
    assert!(
        short.contains("may not specify a duration less than 10 minutes"),
        "{short}"
    );

    // A token bound to a pod ends with the pod.
    cluster.ok(&["run", "holder", "--image=busybox:1.36"]);
    let bound = cluster.ok(&[
        "create",
        "token",
        "builder",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "holder",
    ]);
    let as_pod = cluster.token_kubeconfig("bound", bound.trim());
    assert!(
        cluster
            .kubectl_as(&as_pod, &["auth", "whoami"])
            .status
            .success()
    );
    cluster.ok(&["delete", "pod", "holder", "--grace-period=0", "--force"]);
    let after = cluster.kubectl_as(&as_pod, &["auth", "whoami"]);
    assert!(text(&after).contains("Unauthorized"), "{}", text(&after));

    // And every token ends with its account.
    cluster.ok(&["delete", "serviceaccount", "builder"]);
    let gone = cluster.kubectl_as(&as_builder, &["auth", "whoami"]);
    assert!(text(&gone).contains("Unauthorized"), "{}", text(&gone));
}
