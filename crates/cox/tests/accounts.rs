//! ServiceAccounts and their tokens, with the real kubectl against a control-plane-only
//! server: `kubectl create token` (TokenRequest), the token as a credential (`kubectl auth
//! whoami`, a Forbidden that names the account), TokenReview, `kubectl auth can-i`, and the
//! token's end when its audience is wrong, its account or its bound pod is gone.

mod cluster;

use std::path::{Path, PathBuf};
use std::process::Output;

use cluster::Cluster;

/// A kubeconfig that authenticates with `token` only (no client certificate).
fn token_kubeconfig(cluster: &Cluster, name: &str, token: &str) -> PathBuf {
    let field = |path: &str| {
        cluster.ok(&[
            "config",
            "view",
            "--raw",
            "-o",
            &format!("jsonpath={{.clusters[0].cluster.{path}}}"),
        ])
    };
    let (server, ca) = (field("server"), field("certificate-authority-data"));
    let path = cluster.dir.path().join(format!("{name}.kubeconfig"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    );
    std::fs::write(&path, text).expect("writing a kubeconfig");
    path
}

fn kubectl_as(cluster: &Cluster, kubeconfig: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    cluster.exec("kubectl", &all)
}

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
    let as_builder = token_kubeconfig(&cluster, "builder", &token);

    // Who the token is, and that it is no more than that.
    let whoami = kubectl_as(
        &cluster,
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
    let listed = kubectl_as(&cluster, &as_builder, &["get", "pods"]);
    assert!(!listed.status.success());
    assert!(
        text(&listed).contains(
            "User \"system:serviceaccount:default:builder\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        text(&listed)
    );
    let can = kubectl_as(&cluster, &as_builder, &["auth", "can-i", "list", "pods"]);
    assert_eq!(text(&can).trim(), "no");
    assert_eq!(cluster.ok(&["auth", "can-i", "list", "pods"]).trim(), "yes");

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
    let for_vault = token_kubeconfig(&cluster, "vault", vault.trim());
    let refused = kubectl_as(&cluster, &for_vault, &["auth", "whoami"]);
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
    let as_pod = token_kubeconfig(&cluster, "bound", bound.trim());
    assert!(
        kubectl_as(&cluster, &as_pod, &["auth", "whoami"])
            .status
            .success()
    );
    cluster.ok(&["delete", "pod", "holder", "--grace-period=0", "--force"]);
    let after = kubectl_as(&cluster, &as_pod, &["auth", "whoami"]);
    assert!(text(&after).contains("Unauthorized"), "{}", text(&after));

    // And every token ends with its account.
    cluster.ok(&["delete", "serviceaccount", "builder"]);
    let gone = kubectl_as(&cluster, &as_builder, &["auth", "whoami"]);
    assert!(text(&gone).contains("Unauthorized"), "{}", text(&gone));
}
